import { randomBytes } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { serve as serveNode, type ServerType } from '@hono/node-server';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hono, type Context } from 'hono';
import { ReplicatorError } from '../../shared/errors.js';
import { bearerToken } from '../../shared/http/api-routes.js';
import { mountConsole, securityHeaders, type ConsoleAssets } from '../../shared/http/console-routes.js';
import { error, secretEquals } from '../../shared/http/respond.js';
import type { Log } from '../../shared/observability/telemetry.js';

/** AWS credentials as the default chain gives them (kept in this process only). */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: Date | undefined;
}

/**
 * `harbor-replicator console --aws`: the console on this machine, for an API that only takes
 * SigV4-signed calls (API Gateway with IAM). The page signs in with a code printed at start; each
 * of its API calls is checked (Host, Origin, the code) and forwarded signed with the user's own
 * AWS credentials. The browser never sees a credential, a signature or an AWS header.
 */
export interface AwsConsoleOptions {
  /** The deployed API: `https://<id>.execute-api.<region>.amazonaws.com[/api/v1]` (the stack's ApiUrl). */
  apiUrl: string;
  /** Where to listen: a loopback address (default 127.0.0.1:8081). */
  listen?: string | undefined;
  /** The region, when the URL does not name it (a custom domain). */
  region?: string | undefined;
  /** The credentials (default: the AWS SDK's default provider chain). */
  credentials?: (() => Promise<AwsCredentials>) | undefined;
  /** The console's files (default: the package's dist/console/). */
  console?: ConsoleAssets | undefined;
  /** The sign-in code (default: 24 random characters). */
  code?: string | undefined;
  /** How long a forwarded call may take (default 35 s: API Gateway gives up at 30). */
  timeoutMs?: number | undefined;
  log?: Log | undefined;
}

export interface RunningAwsConsole {
  /** `http://127.0.0.1:8081` */
  url: string;
  /** What the page takes in its token field. */
  code: string;
  /** Where calls go: `https://.../api/v1`. */
  apiBase: string;
  region: string;
  close(): Promise<void>;
}

/** A forwarded request's body at most (the API takes 1 MiB). */
const MAX_BODY = 1024 * 1024;
/** Headers of the browser's request that reach the API; everything else (cookies, the code) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept'];
/** Headers of the API's answer that reach the browser. */
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'cache-control'];

/** `https://x.execute-api.eu-west-1.amazonaws.com/api/v1` → the base of `/api/v1` and the region it names. */
export function parseApiUrl(apiUrl: string, region?: string): { base: URL; region: string } {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new ReplicatorError('USAGE', `--api-url: "${apiUrl}" is not a URL (the stack's ApiUrl output, https://<id>.execute-api.<region>.amazonaws.com/api/v1)`);
  }
  if (url.username || url.password || url.search || url.hash) throw new ReplicatorError('USAGE', '--api-url: no credentials, query or fragment in the URL');
  const loopback = isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ReplicatorError('USAGE', `--api-url: ${url.protocol} is not allowed: signed calls go over HTTPS (plain HTTP only to this machine)`);
  }
  const named = /\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/.exec(url.hostname)?.[1];
  const chosen = region ?? named;
  if (!chosen) throw new ReplicatorError('USAGE', `--api-url: ${url.host} does not name a region (not *.execute-api.<region>.amazonaws.com): give it with --region`);
  if (!/^[a-z]{2}(?:-[a-z]+)+-\d+$/.test(chosen)) throw new ReplicatorError('USAGE', `--region: "${chosen}" is not an AWS region`);
  // The API lives under /api/v1 of the base (a stage's path, if any, stays).
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  const base = new URL(url.origin);
  base.pathname = path;
  return { base, region: chosen };
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function splitListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new ReplicatorError('USAGE', `--listen: "${listen}" is not host:port (e.g. 127.0.0.1:8081)`);
  const host = (m[1] ?? m[2])!;
  if (!isLoopbackHost(host)) {
    throw new ReplicatorError('USAGE', `--listen: ${host} is not a loopback address: console --aws acts with your AWS credentials and serves this machine only (127.0.0.1, ::1 or localhost)`);
  }
  return { host, port: Number(m[3]) };
}

/** Starts the local console; resolves once it listens (and the credentials were found). */
export async function startAwsConsole(opts: AwsConsoleOptions): Promise<RunningAwsConsole> {
  const { base, region } = parseApiUrl(opts.apiUrl, opts.region);
  const { host, port: askedPort } = splitListen(opts.listen ?? '127.0.0.1:8081');
  const assets = opts.console ?? (await (await import('./assets.js')).loadConsoleAssets());
  if (!assets) throw new ReplicatorError('USAGE', "the console's files are not in this installation (npm run build makes them in dist/console/)");
  const credentials = opts.credentials ?? defaultProvider();
  // Found now, so a missing profile is said at start rather than on the first click.
  try {
    await credentials();
  } catch (err) {
    throw new ReplicatorError('AWS_CREDENTIALS', `no AWS credentials from the default chain (environment, profile, SSO, instance role): ${(err as Error).message}`, { cause: err });
  }
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 });
  const code = opts.code ?? randomBytes(18).toString('base64url');
  const timeoutMs = opts.timeoutMs ?? 35_000;

  // Host and Origin this console answers to, filled once the port is known.
  const hosts = new Set<string>();
  const origins = new Set<string>();

  const app = new Hono();
  app.use(securityHeaders);
  // Every request: a Host naming this console (a DNS-rebound name is refused), an Origin, when
  // sent, of this console (another site's page is refused).
  app.use(async (c, next) => {
    const hostHeader = c.req.header('host')?.toLowerCase();
    if (!hostHeader || !hosts.has(hostHeader)) return error(c, 403, 'FOREIGN_HOST', 'this console answers only to its own address (Host header)');
    const origin = c.req.header('origin');
    if (origin !== undefined && !origins.has(origin.toLowerCase())) return error(c, 403, 'FOREIGN_ORIGIN', 'requests from other sites are refused (Origin header)');
    return next();
  });
  mountConsole(app, assets);
  app.all('/api/v1/*', async (c) => {
    // A browser says where a fetch comes from; only this console's own pages may call.
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return error(c, 403, 'FOREIGN_ORIGIN', 'requests from other sites are refused (Sec-Fetch-Site)');
    if (!secretEquals(bearerToken(c.req.header('authorization')), code)) {
      return error(c, 401, 'UNAUTHORIZED', 'the one-time code printed by "harbor-replicator console --aws" at start is required');
    }
    return forward(c);
  });
  app.notFound((c) => error(c, 404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    opts.log?.error('console request failed', { method: c.req.method, path: c.req.path, error: err.message });
    return error(c, 500, 'INTERNAL', 'internal error');
  });

  async function forward(c: Context): Promise<Response> {
    const incoming = new URL(c.req.url);
    const method = c.req.method;
    let body: Uint8Array | undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      const declared = Number(c.req.header('content-length') ?? '0');
      if (declared > MAX_BODY) return error(c, 413, 'TOO_LARGE', 'request body over 1 MiB');
      body = new Uint8Array(await c.req.arrayBuffer());
      if (body.byteLength > MAX_BODY) return error(c, 413, 'TOO_LARGE', 'request body over 1 MiB');
    }
    const target = new URL(base.href);
    target.pathname = `${base.pathname.replace(/\/+$/, '')}${incoming.pathname}`;
    target.search = incoming.search;
    const headers: Record<string, string> = { host: target.host };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = c.req.header(name);
      if (v !== undefined) headers[name] = v;
    }
    const query: Record<string, string[]> = {};
    for (const [k, v] of target.searchParams) (query[k] ??= []).push(v);
    let signed;
    try {
      signed = await signer.sign({
        method,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port ? Number(target.port) : undefined,
        path: target.pathname,
        query,
        headers,
        body,
      });
    } catch (err) {
      return error(c, 502, 'AWS_CREDENTIALS', `the call could not be signed: ${(err as Error).message}`);
    }
    const { host: _host, ...sendHeaders } = signed.headers as Record<string, string>;
    let res: Response;
    try {
      res = await fetch(target, { method, headers: sendHeaders, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const e = err as Error;
      return error(c, 502, e.name === 'TimeoutError' ? 'API_TIMEOUT' : 'API_UNREACHABLE', `the API at ${base.host} did not answer: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.message}`);
    }
    opts.log?.info('forwarded', { method, path: incoming.pathname, status: res.status });
    const out = new Headers();
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const v = res.headers.get(name);
      if (v !== null) out.set(name, v);
    }
    // A redirect would send the browser elsewhere with nothing signed: not followed, not passed on.
    if (res.status >= 300 && res.status < 400) return error(c, 502, 'API_REDIRECT', `the API answered ${res.status} (a redirect): is --api-url the stack's ApiUrl?`);
    return new Response(method === 'HEAD' ? null : await res.arrayBuffer(), { status: res.status, headers: out });
  }

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serveNode({ fetch: app.fetch, hostname: host, port: askedPort }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : askedPort;
  const names = [host.includes(':') ? `[${host}]` : host];
  // A loopback console may be opened by any of this machine's names for itself.
  for (const alias of ['localhost', '127.0.0.1', '[::1]']) if (!names.includes(alias)) names.push(alias);
  for (const n of names) {
    hosts.add(`${n}:${port}`.toLowerCase());
    origins.add(`http://${n}:${port}`.toLowerCase());
  }
  const url = `http://${names[0]}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    code,
    apiBase: `${base.href.replace(/\/$/, '')}/api/v1`,
    region,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      })),
  };
}
