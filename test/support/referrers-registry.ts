import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A small stand-in for the OCI distribution 1.1 referrers API in front of a real docker-registry
 * (2.8 has none): every request goes through to the registry, and this proxy keeps the referrers
 * index itself, as a 1.1 registry does. A manifest PUT with a `subject` is recorded under
 * `repository@subject` (its descriptor: media type, digest, size, `artifactType`, else the
 * config's media type, annotations) and answered with `OCI-Subject`; a manifest DELETE by digest
 * forgets it; `GET /v2/<name>/referrers/<digest>` answers an image index of those descriptors,
 * filtered by `?artifactType=` (with `OCI-Filters-Applied: artifactType`), `pageSize` entries a
 * page with a `Link` to the next (`?n=`-less cursor `last=`, as the spec leaves it to the
 * registry). With `api: false` it only counts: the registry's own 404 goes back as it is.
 */
export interface ReferrersRegistry {
  host: string;
  url: string;
  /** Requests seen: method and path (with the query). */
  log: Array<{ method: string; path: string; status: number }>;
  /** How many requests matched. */
  count(path: RegExp, method?: string): number;
  /** The descriptors recorded per `repository@subject`. */
  referrers: Map<string, Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

export async function startReferrersRegistry(upstream: string, opts: { api?: boolean; pageSize?: number } = {}): Promise<ReferrersRegistry> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const api = opts.api !== false;
  const pageSize = opts.pageSize ?? 100;
  const log: ReferrersRegistry['log'] = [];
  const referrers = new Map<string, Array<Record<string, unknown>>>();

  const forward = (req: IncomingMessage, res: ServerResponse, entry: { status: number }, body?: Buffer, extra: Record<string, string> = {}) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'connection') headers[k] = v;
    if (body) headers['content-length'] = String(body.length);
    const up = httpRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers }, (upRes) => {
      entry.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, ...(upRes.statusCode === 201 ? extra : {}) });
      upRes.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry = { method, path, status: 0 };
    log.push(entry);
    const url = new URL(path, 'http://x');
    const listing = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (listing && api && method === 'GET') {
      req.resume();
      const [, repo, subject] = listing as unknown as [string, string, string];
      const type = url.searchParams.get('artifactType');
      const all = (referrers.get(`${repo}@${decodeURIComponent(subject)}`) ?? []).filter((d) => type === null || d.artifactType === type);
      const start = Number(url.searchParams.get('last') ?? 0);
      const page = all.slice(start, start + pageSize);
      const headers: Record<string, string> = { 'content-type': 'application/vnd.oci.image.index.v1+json' };
      if (type !== null) headers['oci-filters-applied'] = 'artifactType';
      if (start + pageSize < all.length) {
        const next = new URLSearchParams(url.searchParams);
        next.set('last', String(start + pageSize));
        headers.link = `<${url.pathname}?${next.toString()}>; rel="next"`;
      }
      const text = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: page }));
      entry.status = 200;
      res.writeHead(200, { ...headers, 'content-length': String(text.length) });
      res.end(text);
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest && api && method === 'PUT') {
      const [, repo, ref] = manifest as unknown as [string, string, string];
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let subject: string | undefined;
        try {
          const m = JSON.parse(body.toString('utf8')) as { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
          subject = m.subject?.digest;
          if (subject) {
            const key = `${repo}@${subject}`;
            const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
            const list = (referrers.get(key) ?? []).filter((d) => d.digest !== digest);
            list.push({
              mediaType: String(req.headers['content-type']),
              digest,
              size: body.length,
              ...(m.artifactType ?? m.config?.mediaType ? { artifactType: m.artifactType ?? m.config?.mediaType } : {}),
              ...(m.annotations ? { annotations: m.annotations } : {}),
            });
            referrers.set(key, list);
          }
        } catch {
          // not JSON: the registry answers it
        }
        void ref;
        forward(req, res, entry, body, subject ? { 'oci-subject': subject } : {});
      });
      return;
    }
    if (manifest && api && method === 'DELETE') {
      const [, repo, ref] = manifest as unknown as [string, string, string];
      for (const [key, list] of referrers) {
        if (!key.startsWith(`${repo}@`)) continue;
        referrers.set(
          key,
          list.filter((d) => d.digest !== decodeURIComponent(ref)),
        );
      }
    }
    forward(req, res, entry);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    log,
    count: (p, m) => log.filter((e) => (!m || e.method === m) && p.test(e.path)).length,
    referrers,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
