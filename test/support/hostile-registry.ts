import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A registry that lies, for the trust-boundary tests: a proxy in front of a real docker-registry
 * that rewrites what a hostile registry would (tags/list and _catalog bodies, `Link`, upload
 * `Location`, `Docker-Content-Digest`, error bodies) and serves manifests of its own (fan-out
 * indexes); a recorder that logs every request and any `Authorization` it is sent; and a Harbor
 * API whose pages never end. Everything listens on 127.0.0.1, and every lie is bounded in
 * count so that code without the protections under test still terminates (and fails the test
 * for the stated reason rather than by timing out).
 */

/** One request as a hostile server saw it. */
export interface SeenRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  /** The `Authorization` header, when one came. */
  authorization: string | undefined;
  status: number;
}

/** A manifest the proxy serves itself (GET and HEAD), with its digest. */
export interface ServedManifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
}

/** What the proxy lies about; every field may be changed between tests. */
export interface HostileRules {
  /** repository -> the tags its `tags/list` answers instead of the registry's. */
  tags?: Record<string, string[]>;
  /** The repositories `_catalog` answers instead of the registry's. */
  catalog?: string[];
  /**
   * The `Link` header of `_catalog` and `tags/list` answers, from the request's path and query
   * and how many Links were sent so far; undefined for none.
   */
  link?: (pathAndQuery: string, sent: number) => string | undefined;
  /** Links sent at most (then none): code that follows them forever still ends. Default 200. */
  maxLinks?: number;
  /** Rewrites the `Location` of upload answers (`/blobs/uploads/`), from the absolute one sent. */
  location?: (location: string) => string;
  /**
   * `repository:tag` or `repository@digest` -> a manifest served by the proxy, not the registry
   * (one under a tag is served by its digest too).
   */
  manifests?: Map<string, ServedManifest>;
  /** Replaces `Docker-Content-Digest` on manifest answers. */
  digestHeader?: string;
  /** Answers of our own (error bodies), first match wins; the registry is not asked. */
  answers?: Array<{ method?: string; path: RegExp; status: number; body: string; contentType?: string; headers?: Record<string, string> }>;
}

/** A hostile registry in front of a real one. */
export interface HostileRegistry {
  host: string;
  port: number;
  url: string;
  rules: HostileRules;
  /** Every request, in order. */
  log: SeenRequest[];
  /** Requests whose method and path match. */
  count(path: RegExp, method?: string): number;
  stop(): Promise<void>;
}

/** Distinct `Host` kept (docker-registry builds absolute Locations from it), hop headers dropped. */
function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'connection') out[k] = v;
  return out;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(text.length), ...headers });
  res.end(text);
}

async function readBody(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function listen(server: Server): Promise<{ port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, sockets };
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** A served manifest by `repository:tag`, or by digest (under a tag of its repository or its own key). */
function servedManifest(manifests: Map<string, ServedManifest> | undefined, repository: string, ref: string): ServedManifest | undefined {
  if (!manifests) return undefined;
  if (!ref.includes(':')) return manifests.get(`${repository}:${ref}`);
  for (const [key, m] of manifests) if (m.digest === ref && (key.startsWith(`${repository}:`) || key.startsWith(`${repository}@`))) return m;
  return undefined;
}

/** Starts a hostile proxy on 127.0.0.1 in front of the registry at `upstream` (`host:port`). */
export async function startHostileRegistry(upstream: string, rules: HostileRules = {}): Promise<HostileRegistry> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const log: SeenRequest[] = [];
  let linksSent = 0;
  const proxy: HostileRegistry = { host: '', port: 0, url: '', rules, log, count: () => 0, stop: async () => {} };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry: SeenRequest = { method, path, authorization: req.headers.authorization, status: 0 };
    log.push(entry);
    const r = proxy.rules;
    const pathname = path.split('?', 1)[0]!;

    const answer = r.answers?.find((a) => (!a.method || a.method === method) && a.path.test(path));
    if (answer) {
      req.resume();
      entry.status = answer.status;
      res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json', ...answer.headers });
      res.end(answer.body);
      return;
    }

    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname);
    if (manifest && (method === 'GET' || method === 'HEAD')) {
      const [, repo, ref] = manifest;
      const served = servedManifest(r.manifests, repo!, decodeURIComponent(ref!));
      if (served) {
        req.resume();
        entry.status = 200;
        res.writeHead(200, {
          'content-type': served.mediaType,
          'content-length': String(served.bytes.length),
          'docker-content-digest': r.digestHeader ?? served.digest,
        });
        res.end(method === 'GET' ? served.bytes : undefined);
        return;
      }
    }

    const tagsOf = /^\/v2\/(.+)\/tags\/list$/.exec(pathname)?.[1];
    const listing = tagsOf !== undefined || pathname === '/v2/_catalog';
    const up = httpRequest({ host: upHost, port: Number(upPort), method, path, headers: forwardHeaders(req) }, (upRes) => {
      const headers = { ...upRes.headers };
      entry.status = upRes.statusCode ?? 0;
      if (headers.location && r.location && /\/blobs\/uploads\//.test(pathname)) {
        headers.location = r.location(new URL(headers.location, `http://${req.headers.host}`).href);
      }
      if (manifest && r.digestHeader && headers['docker-content-digest']) headers['docker-content-digest'] = r.digestHeader;
      if (!listing || upRes.statusCode !== 200) {
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
        return;
      }
      // A listing: read it, lie about it.
      void readBody(upRes).then((raw) => {
        let body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        if (tagsOf !== undefined && r.tags?.[tagsOf]) body = { name: tagsOf, tags: r.tags[tagsOf] };
        if (tagsOf === undefined && r.catalog) body = { repositories: r.catalog };
        delete headers['content-length'];
        delete headers.link;
        const link = linksSent < (r.maxLinks ?? 200) ? r.link?.(path, linksSent) : undefined;
        if (link) {
          linksSent += 1;
          headers.link = link;
        }
        const text = Buffer.from(JSON.stringify(body));
        res.writeHead(200, { ...headers, 'content-length': String(text.length) });
        res.end(text);
      });
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  const { port, sockets } = await listen(server);
  proxy.host = `127.0.0.1:${port}`;
  proxy.port = port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.count = (path, method) => log.filter((e) => (!method || e.method === method) && path.test(e.path)).length;
  proxy.stop = closer(server, sockets);
  return proxy;
}

/** A listener that records every request and the `Authorization` of each. */
export interface Recorder {
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT` */
  url: string;
  requests: SeenRequest[];
  /** Every `Authorization` header received (should stay empty). */
  authorizations(): string[];
  stop(): Promise<void>;
}

/**
 * Starts a recorder: it answers every request 401 with a challenge naming itself as a Bearer
 * realm, which is what an attacker's host would answer to get credentials sent to it.
 */
export async function startRecorder(): Promise<Recorder> {
  const requests: SeenRequest[] = [];
  let port = 0;
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization, status: 401 });
    req.resume();
    req.on('end', () =>
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'send your credentials here' }] }, {
        'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="recorder"`,
      }),
    );
  });
  const listening = await listen(server);
  port = listening.port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    authorizations: () => requests.flatMap((r) => (r.authorization ? [r.authorization] : [])),
    stop: closer(server, listening.sockets),
  };
}

/** An OCI index of `entries` descriptors that all name `child` (one platform): a fan-out. */
export function fanOutIndex(child: { mediaType: string; digest: string; size: number }, entries: number): ServedManifest {
  const manifests = Array.from({ length: entries }, () => ({ ...child, platform: { architecture: 'amd64', os: 'linux' } }));
  return served('application/vnd.oci.image.index.v1+json', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
}

/** A manifest of `mediaType` with this body, and its digest. */
export function served(mediaType: string, body: unknown): ServedManifest {
  const bytes = Buffer.from(JSON.stringify(body));
  return { mediaType, bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/** A Harbor API whose list pages never end by themselves. */
export interface HostileHarbor {
  url: string;
  host: string;
  /** API requests, in order. */
  log: SeenRequest[];
  stop(): Promise<void>;
}

/**
 * A Harbor API (`/api/v2.0/projects`) that lies about pagination: `full-pages` answers 100
 * projects on every page, without `X-Total-Count` or `Link` (a list that never says it ended);
 * `self-link` answers one project with a `Link` to the very same page; `{ linkTo }` answers one
 * project with a `Link` to another host's URL. None of the projects is the one a rule asks for,
 * so nothing else is requested. After `maxPages` (default 100) answers it tells the truth (an
 * empty page, no Link), so code without a bound still terminates.
 */
export async function startHostileHarbor(mode: 'full-pages' | 'self-link' | { linkTo: string }, maxPages = 100): Promise<HostileHarbor> {
  const log: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    log.push({ method: req.method ?? 'GET', path, authorization: req.headers.authorization, status: 200 });
    req.resume();
    const url = new URL(path, 'http://harbor');
    if (url.pathname === '/v2/') return json(res, 200, {});
    if (url.pathname !== '/api/v2.0/projects') return json(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not here' }] });
    const page = Number(url.searchParams.get('page') ?? 1);
    const honest = log.length > maxPages;
    if (mode === 'full-pages') {
      const items = honest ? [] : Array.from({ length: 100 }, (_, i) => ({ project_id: page * 1000 + i, name: `decoy-${page}-${i}`, registry_id: 0 }));
      return json(res, 200, items);
    }
    const link = mode === 'self-link' ? path : mode.linkTo;
    return json(res, 200, honest ? [] : [{ project_id: 1, name: 'decoy', registry_id: 0 }], honest ? {} : { link: `<${link}>; rel="next"` });
  });
  const { port, sockets } = await listen(server);
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, log, stop: closer(server, sockets) };
}
