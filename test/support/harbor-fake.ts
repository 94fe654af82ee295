import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request } from 'undici';
import { ACCEPT } from './inspect.js';
import type { TestRegistry } from './registry.js';

/**
 * A stand-in for Harbor's API v2.0 in front of a real docker-registry: `/v2/*` is proxied to the
 * registry (content), `/api/v2.0/*` answers with the shapes of Harbor's `api/v2.0/swagger.yaml`
 * (goharbor/harbor c50c7ddd): `Project`, `Repository`, `Artifact` (with `Tag`, `Label`),
 * `Errors`; pagination by `page`/`page_size` (default 10, at most 100, else 422) with
 * `X-Total-Count` and a `Link` header built like Harbor's `BaseAPI.Links` (relative URLs,
 * `rel="prev"` and `rel="next"` joined with " , "). Like Harbor, a request without valid Basic
 * credentials is served as anonymous: it sees no private project.
 */
export interface HarborFake {
  url: string;
  host: string;
  /** API requests received, in order. */
  requests: Array<{ method: string; path: string; authenticated: boolean }>;
  /** Labels per artifact digest. */
  labels: Map<string, string[]>;
  /** Artifacts without tags, per repository (Harbor lists them; the registry cannot). */
  untagged: Array<{ repository: string; digest: string }>;
  /** Artifact type per digest (default IMAGE). */
  types: Map<string, string>;
  /** Accessories per subject digest (`with_accessory=true`): signatures, SBOMs, other referrers. */
  accessories: Map<string, Array<{ digest: string; type: string }>>;
  /** Projects, created ones included. */
  projects: Map<string, { project_id: number; public: boolean }>;
  stop(): Promise<void>;
}

const NOW = '2026-11-01T10:00:00.000Z';
const ZERO_TIME = '0001-01-01T00:00:00.000Z';

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'test', ...headers });
  res.end(text);
}

/** Harbor's `Errors` body. */
function error(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { errors: [{ code, message }] });
}

export async function startHarborFake(registry: TestRegistry, opts: { user: string; password: string; projects?: string[] }): Promise<HarborFake> {
  const requests: HarborFake['requests'] = [];
  const labels = new Map<string, string[]>();
  const untagged: HarborFake['untagged'] = [];
  const types = new Map<string, string>();
  const accessories = new Map<string, Array<{ digest: string; type: string }>>();
  const projects = new Map<string, { project_id: number; public: boolean }>();
  let nextId = 1;
  for (const p of opts.projects ?? []) projects.set(p, { project_id: nextId++, public: false });
  const expected = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;

  const registryJson = async (path: string): Promise<unknown> => {
    const r = await request(`${registry.url}${path}`);
    if (r.statusCode === 404) {
      await r.body.dump();
      return undefined;
    }
    return r.body.json();
  };

  /** Harbor's pagination: a slice, `X-Total-Count`, and `Link` like `BaseAPI.Links`. */
  const paginate = (req: IncomingMessage, res: ServerResponse, url: URL, items: unknown[]) => {
    const page = Number(url.searchParams.get('page') ?? 1);
    const size = Number(url.searchParams.get('page_size') ?? 10);
    if (size > 100) return error(res, 422, 'UNPROCESSABLE_ENTITY', 'page_size in query should be less than or equal to 100');
    const total = items.length;
    const link = (p: number) => {
      const q = new URLSearchParams(url.searchParams);
      q.set('page', String(p));
      q.set('page_size', String(size));
      q.sort();
      return `<${url.pathname}?${decodeURIComponent(q.toString())}>`;
    };
    const links: string[] = [];
    if (page > 1 && (page - 1) * size < total) links.push(`${link(page - 1)}; rel="prev"`);
    if (size * page < total) links.push(`${link(page + 1)}; rel="next"`);
    const headers: Record<string, string> = { 'x-total-count': String(total) };
    if (links.length) headers.link = links.join(' , ');
    void req;
    send(res, 200, items.slice((page - 1) * size, page * size), headers);
  };

  const artifactsOf = async (repository: string, withAccessory = false) => {
    const tags = ((await registryJson(`/v2/${repository}/tags/list`)) as { tags?: string[] } | undefined)?.tags ?? [];
    const byDigest = new Map<string, { digest: string; mediaType: string; tags: string[] }>();
    for (const tag of [...tags].sort()) {
      const r = await request(`${registry.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
      await r.body.dump();
      const digest = String(r.headers['docker-content-digest']);
      const entry = byDigest.get(digest) ?? { digest, mediaType: String(r.headers['content-type']), tags: [] };
      entry.tags.push(tag);
      byDigest.set(digest, entry);
    }
    for (const u of untagged) {
      if (u.repository === repository && !byDigest.has(u.digest)) {
        byDigest.set(u.digest, { digest: u.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', tags: [] });
      }
    }
    let id = 1;
    // swagger Artifact: empty arrays are null, zero times are 0001-01-01.
    return [...byDigest.values()].map((a) => ({
      id: id++,
      type: types.get(a.digest) ?? 'IMAGE',
      media_type: 'application/vnd.oci.image.config.v1+json',
      manifest_media_type: a.mediaType,
      project_id: projects.get(repository.split('/')[0]!)?.project_id ?? 0,
      repository_id: 1,
      repository_name: repository,
      digest: a.digest,
      size: 1,
      push_time: NOW,
      pull_time: ZERO_TIME,
      references: null,
      // swagger AccessoryData, listed only when asked (with_accessory=true).
      accessories:
        withAccessory && accessories.get(a.digest)?.length
          ? accessories.get(a.digest)!.map((x, i) => ({ id: i + 1, artifact_id: id, subject_artifact_id: id, subject_artifact_digest: a.digest, size: 1, digest: x.digest, type: x.type, icon: '', creation_time: NOW }))
          : null,
      addition_links: {},
      tags: a.tags.length
        ? a.tags.map((name, i) => ({ id: i + 1, repository_id: 1, artifact_id: id, name, push_time: NOW, pull_time: ZERO_TIME, immutable: false }))
        : null,
      labels: labels.get(a.digest)?.map((name, i) => ({ id: i + 1, name, description: '', color: '#0065AB', scope: 'g', creation_time: NOW, update_time: NOW })) ?? null,
    }));
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL, authenticated: boolean) => {
    const path = url.pathname.slice('/api/v2.0'.length);
    const visible = (name: string) => {
      const p = projects.get(name);
      return p !== undefined && (authenticated || p.public);
    };
    if (path === '/projects' && req.method === 'HEAD') {
      if (!authenticated) return error(res, 401, 'UNAUTHORIZED', 'unauthorized');
      res.writeHead(projects.has(url.searchParams.get('project_name') ?? '') ? 200 : 404);
      return res.end();
    }
    if (path === '/projects' && req.method === 'POST') {
      if (!authenticated) return error(res, 401, 'UNAUTHORIZED', 'unauthorized');
      const body = JSON.parse(await readBody(req)) as { project_name: string; metadata?: { public?: string } };
      if (projects.has(body.project_name)) return error(res, 409, 'CONFLICT', `The project named ${body.project_name} already exists`);
      const project_id = nextId++;
      projects.set(body.project_name, { project_id, public: body.metadata?.public === 'true' });
      res.writeHead(201, { location: `/api/v2.0/projects/${project_id}`, 'x-request-id': 'test' });
      return res.end();
    }
    if (path === '/projects' && req.method === 'GET') {
      const name = url.searchParams.get('name');
      const list = [...projects.entries()]
        .filter(([n]) => visible(n) && (!name || n.includes(name)))
        .map(([n, p]) => ({
          project_id: p.project_id,
          owner_id: 1,
          name: n,
          owner_name: 'admin',
          creation_time: NOW,
          update_time: NOW,
          repo_count: 0,
          current_user_role_ids: [1],
          metadata: { public: String(p.public) },
          cve_allowlist: { id: 0, project_id: p.project_id, items: [], creation_time: ZERO_TIME, update_time: ZERO_TIME },
        }));
      return paginate(req, res, url, list);
    }
    const repos = /^\/projects\/([^/]+)\/repositories$/.exec(path);
    if (repos && req.method === 'GET') {
      const project = decodeURIComponent(repos[1]!);
      if (!visible(project)) return error(res, authenticated ? 403 : 401, authenticated ? 'FORBIDDEN' : 'UNAUTHORIZED', 'unauthorized');
      const catalog = ((await registryJson('/v2/_catalog?n=1000')) as { repositories?: string[] }).repositories ?? [];
      const list = catalog
        .filter((r) => r.startsWith(`${project}/`))
        .sort()
        .map((name, i) => ({ id: i + 1, project_id: projects.get(project)!.project_id, name, artifact_count: 1, pull_count: 0, update_time: NOW }));
      return paginate(req, res, url, list);
    }
    const arts = /^\/projects\/([^/]+)\/repositories\/([^/]+)\/artifacts$/.exec(path);
    if (arts && req.method === 'GET') {
      const project = decodeURIComponent(arts[1]!);
      // The raw path still has the second encoding: a%252Fb -> a%2Fb -> a/b.
      const repo = decodeURIComponent(decodeURIComponent(arts[2]!));
      if (!visible(project)) return error(res, authenticated ? 403 : 401, authenticated ? 'FORBIDDEN' : 'UNAUTHORIZED', 'unauthorized');
      return paginate(req, res, url, await artifactsOf(`${project}/${repo}`, url.searchParams.get('with_accessory') === 'true'));
    }
    const one = /^\/projects\/([^/]+)\/repositories\/([^/]+)\/artifacts\/([^/]+)$/.exec(path);
    if (one && req.method === 'GET') {
      const project = decodeURIComponent(one[1]!);
      const repo = decodeURIComponent(decodeURIComponent(one[2]!));
      if (!visible(project)) return error(res, authenticated ? 403 : 401, authenticated ? 'FORBIDDEN' : 'UNAUTHORIZED', 'unauthorized');
      const reference = decodeURIComponent(one[3]!);
      const found = (await artifactsOf(`${project}/${repo}`, url.searchParams.get('with_accessory') === 'true')).find((a) => a.digest === reference || a.tags?.some((t) => t.name === reference));
      return found ? send(res, 200, found) : error(res, 404, 'NOT_FOUND', `artifact ${project}/${repo}:${reference} not found`);
    }
    error(res, 404, 'NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
  };

  const server: Server = createServer((req, res) => {
    // Keep the raw path: Harbor's repository names arrive encoded twice.
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname.startsWith('/v2')) {
      const up = httpRequest({ host: '127.0.0.1', port: registry.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.socket?.destroy());
      req.pipe(up);
      return;
    }
    const authenticated = req.headers.authorization === expected;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', authenticated });
    api(req, res, url, authenticated).catch((err: unknown) => error(res, 500, 'UNKNOWN', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    labels,
    untagged,
    types,
    accessories,
    projects,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
