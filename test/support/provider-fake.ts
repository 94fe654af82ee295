import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestRegistry } from './registry.js';

/**
 * Stand-ins for the registries of other providers, in front of a real docker-registry (the OCI
 * part: manifests, blobs, tags are the registry's own answers), shaped like each provider where
 * it differs: its token service (path, accepted users, scopes it grants or refuses), the scopes
 * its registry checks, and its own API (listing, namespace creation) next to it or on another
 * origin (`startApiFake`). Every request is recorded with its Authorization, so tests can say
 * which credential went where.
 */

/** One request a fake received. */
export interface Seen {
  method: string;
  /** The raw path and query, as received. */
  path: string;
  authorization: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A token the fake's token service issued. */
interface Grant {
  user: string;
  scopes: string[];
}

export interface ProviderFakeOptions {
  /** The real registry behind (start it with relativeUrls, so uploads come back through here). */
  upstream: TestRegistry;
  /** Basic credentials the token service (or the registry, with `basic`) accepts; may change while running. */
  users: Map<string, string>;
  /** The token realm's path (ACR `/oauth2/token`, GitLab `/jwt/auth`, Quay `/v2/auth`). */
  realmPath?: string;
  /** The realm on another origin (GitLab: GitLab's own host); default this fake. */
  realmOrigin?: () => string;
  service?: string;
  /** The registry asks for Basic itself (no token service). */
  basic?: boolean;
  /** Refuses a token request (Quay refuses the catalog scope): a status and a body, or undefined. */
  refuseToken?: (scopes: string[], user: string) => { status: number; body: unknown } | undefined;
  /** Scopes a registry request needs besides pull/push (ACR: `metadata_read` to list tags). */
  extraScopes?: (method: string, repository: string, rest: string) => string[];
  /** The catalog needs no scope (Quay lists what the token's user sees). */
  catalogWithoutScope?: boolean;
  /** The provider's own API on this origin: true when handled. */
  api?: ApiHandler;
  /** Headers added to registry answers (Docker Hub's `ratelimit-*` on manifests). */
  responseHeaders?: (method: string, path: string) => Record<string, string>;
}

export type ApiHandler = (req: IncomingMessage, res: ServerResponse, url: URL, seen: Seen) => boolean | Promise<boolean>;

export interface ProviderFake {
  url: string;
  host: string;
  port: number;
  requests: Seen[];
  tokenRequests: Array<{ user: string | undefined; scopes: string[]; granted: boolean }>;
  /** Registry requests that reached the real registry (after auth), e.g. `PATCH /v2/a/b/blobs/uploads/...`. */
  forwarded: Array<{ method: string; path: string; length: string | undefined }>;
  /** The users the token service accepts (a cloud stand-in adds the temporary ones it issues). */
  users: Map<string, string>;
  /** The token service, for a realm on another origin (GitLab's API host serves `/jwt/auth`). */
  issueToken(req: IncomingMessage, res: ServerResponse, url: URL): void;
  stop(): Promise<void>;
}

/** `{status, body}` as JSON. */
export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): true {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
  return true;
}

/** The user and password of a Basic Authorization header. */
export function basicUser(authorization: string | undefined): { user: string; password: string } | undefined {
  if (!authorization?.startsWith('Basic ')) return undefined;
  const text = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function listen(server: Server, sockets: Set<Socket>): Promise<number> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function stopper(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** The repository and the rest of a `/v2/<name>/(manifests|blobs|tags)/...` path. */
function v2Parts(path: string): { repository: string; rest: string } | undefined {
  const m = /^\/v2\/(.+?)\/((?:manifests|blobs|tags)\/.*)$/.exec(path);
  return m ? { repository: m[1]!, rest: m[2]! } : undefined;
}

export async function startProviderFake(opts: ProviderFakeOptions): Promise<ProviderFake> {
  const requests: Seen[] = [];
  const tokenRequests: ProviderFake['tokenRequests'] = [];
  const forwarded: ProviderFake['forwarded'] = [];
  const tokens = new Map<string, Grant>();
  const realmPath = opts.realmPath ?? '/token';
  const service = opts.service ?? 'provider-registry';
  const sockets = new Set<Socket>();
  let self = '';

  const challenge = (scope?: string, error?: string) =>
    opts.basic
      ? 'Basic realm="registry"'
      : `Bearer realm="${opts.realmOrigin?.() ?? self}${realmPath}",service="${service}"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;

  const unauthorized = (res: ServerResponse, scope?: string, error?: string) => {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': challenge(scope, error) });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };

  const validUser = (authorization: string | undefined) => {
    const b = basicUser(authorization);
    return b && opts.users.get(b.user) === b.password ? b.user : undefined;
  };

  /** Issues tokens: Basic credentials in, an opaque token granting the scopes asked out. */
  const token = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const scopes = url.searchParams.getAll('scope');
    const user = validUser(req.headers.authorization);
    tokenRequests.push({ user: basicUser(req.headers.authorization)?.user, scopes, granted: user !== undefined });
    if (!user) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
    const refused = opts.refuseToken?.(scopes, user);
    if (refused) return json(res, refused.status, refused.body);
    const value = randomBytes(16).toString('hex');
    tokens.set(value, { user, scopes });
    return json(res, 200, { token: value, access_token: value, expires_in: 300 });
  };

  /** The scopes a registry request needs. */
  const needed = (method: string, path: string): string[] => {
    if (/^\/v2\/_catalog$/.test(path)) return opts.catalogWithoutScope ? [] : ['registry:catalog:*'];
    const parts = v2Parts(path);
    if (!parts) return [];
    const action = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push';
    return [`repository:${parts.repository}:${action}`, ...(opts.extraScopes?.(method, parts.repository, parts.rest) ?? [])];
  };

  const granted = (grant: Grant, scope: string) => {
    const [type, ...rest] = scope.split(':');
    const action = rest.pop()!;
    const name = rest.join(':');
    return grant.scopes.some((s) => {
      const [t, ...r] = s.split(':');
      const actions = r.pop()!.split(',');
      return t === type && r.join(':') === name && (actions.includes(action) || actions.includes('*') || (action === 'delete' && actions.includes('push')));
    });
  };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer | IncomingMessage) => {
    const headers = { ...req.headers };
    delete headers.authorization;
    headers.host = opts.upstream.host;
    forwarded.push({ method: req.method ?? 'GET', path: req.url ?? '/', length: req.headers['content-length'] });
    const up = httpRequest({ host: '127.0.0.1', port: opts.upstream.port, method: req.method, path: req.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, ...opts.responseHeaders?.(req.method ?? 'GET', req.url ?? '/') });
      upRes.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    if (Buffer.isBuffer(body)) up.end(body);
    else body.pipe(up);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const isRegistry = (path === '/v2' || path.startsWith('/v2/')) && path !== realmPath;
    // Registry bodies (blobs) stream through; token and API bodies are read and recorded.
    const bodyPromise = isRegistry ? Promise.resolve('') : readBody(req);
    void bodyPromise.then(async (bodyText) => {
      const seen: Seen = { method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization, headers: req.headers, body: bodyText };
      requests.push(seen);
      try {
        if (path === realmPath && !opts.basic && !opts.realmOrigin) return token(req, res, url);
        if (!isRegistry) {
          if (opts.api && (await opts.api(req, res, url, seen))) return;
          return json(res, 404, { error: `no route ${req.method} ${path}` });
        }
        const authorization = req.headers.authorization;
        if (opts.basic) {
          if (!validUser(authorization)) return unauthorized(res);
          return forward(req, res, req);
        }
        const grant = authorization?.startsWith('Bearer ') ? tokens.get(authorization.slice(7)) : undefined;
        if (!grant) return unauthorized(res);
        for (const scope of needed(req.method ?? 'GET', path)) {
          if (!granted(grant, scope)) return unauthorized(res, scope, 'insufficient_scope');
        }
        return forward(req, res, req);
      } catch (err) {
        if (!res.headersSent) json(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
      }
    });
  });
  const port = await listen(server, sockets);
  self = `http://127.0.0.1:${port}`;
  return { url: self, host: `127.0.0.1:${port}`, port, users: opts.users, requests, tokenRequests, forwarded, issueToken: (req, res, url) => void token(req, res, url), stop: stopper(server, sockets) };
}

/** A provider's API alone, on its own origin (Docker Hub's, GitHub's, a cloud's OpenAPI). */
export interface ApiFake {
  url: string;
  host: string;
  requests: Seen[];
  stop(): Promise<void>;
}

export async function startApiFake(handler: ApiHandler): Promise<ApiFake> {
  const requests: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void readBody(req).then(async (body) => {
      const seen: Seen = { method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization, headers: req.headers, body };
      requests.push(seen);
      try {
        if (!(await handler(req, res, new URL(req.url ?? '/', 'http://fake'), seen))) json(res, 404, { message: `no route ${req.method} ${req.url}` });
      } catch (err) {
        if (!res.headersSent) json(res, 500, { message: String(err) });
      }
    });
  });
  const port = await listen(server, sockets);
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, requests, stop: stopper(server, sockets) };
}

/** The repositories of a plain registry (its catalog). */
export async function catalogOf(registry: TestRegistry): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/_catalog?n=1000`);
  return ((await res.json()) as { repositories?: string[] }).repositories ?? [];
}

/** The tags of a repository of a plain registry, sorted. */
export async function tagsOf(registry: TestRegistry, repository: string): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/${repository}/tags/list`);
  if (res.status !== 200) return [];
  return (((await res.json()) as { tags?: string[] | null }).tags ?? []).sort();
}

/** One page of `items` (1-based `page` of `size`) and whether more follow. */
export function pageOf<T>(items: T[], page: number, size: number): { items: T[]; more: boolean } {
  return { items: items.slice((page - 1) * size, page * size), more: page * size < items.length };
}
