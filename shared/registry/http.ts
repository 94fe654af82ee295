import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, buildConnector, interceptors, type Dispatcher } from 'undici';
import { isAbort, StoppedError } from '../errors.js';
import { AddressRefusedError, guardedLookup, type AddressRule, type ConnectPolicy } from './address-policy.js';
import type { HostStates } from './backoff.js';
import { parseErrorBody, parseRetryAfter, RegistryError, redactUrl } from './errors.js';
import type { RateLimiter } from './rate-limit.js';

/** Response headers as undici gives them (lowercase names). */
export type Headers = Record<string, string | string[] | undefined>;

/** Bodies we send: bytes (replayable) or a stream of chunks (sent once, never replayed). */
export type RequestBody = Buffer | string | AsyncIterable<Uint8Array> | null;

/** One HTTP request as the retry loop sees it. */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Statuses that are an answer (anything else becomes a RegistryError). */
  expect: readonly number[];
  /** Follow redirects (blob GETs to object storage); `Authorization` is dropped off-origin. */
  followRedirects?: boolean;
  signal?: AbortSignal | undefined;
  /** Adds `Authorization` before each attempt and reacts to a 401 once. */
  auth?: RequestAuth;
}

/** What the auth layer plugs into the retry loop. */
export interface RequestAuth {
  header(): Promise<string | undefined>;
  /** Called on a 401: returns true when a retry with a fresh header makes sense. */
  unauthorized(headers: Headers): Promise<boolean>;
}

/** An answered request; the caller must consume or dump `body`. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

/** Observability hook: retries and finished requests, with redacted URLs only. */
export type HttpEvent =
  | { kind: 'retry'; method: string; url: string; attempt: number; delayMs: number; reason: string }
  | { kind: 'response'; method: string; url: string; status: number; ms: number };

/** TLS settings of one registry. */
export interface TlsOptions {
  /** Verify certificates (default true). */
  verify: boolean;
  /** PEM bundle added to the system roots. */
  caFile?: string | undefined;
}

/** The bound on error bodies we read (go-containerregistry reads 64 KiB too). */
export const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * An undici dispatcher for one TLS configuration, with the redirect interceptor composed in
 * (undici 7 follows redirects only through it; it drops `Authorization` when the redirect leaves
 * the origin, which is what keeps registry credentials away from object storage).
 *
 * With a `policy`, every connection is checked against it at connect time, on the resolved
 * address: the client's own requests against `policy.direct`, redirects it follows (to another
 * origin) against `policy.redirects`, each through its own agent, so DNS cannot dodge either.
 */
export function createDispatcher(tls: TlsOptions, policy?: ConnectPolicy): Dispatcher {
  const ca = tls.caFile ? [...rootCertificates, readFileSync(tls.caFile, 'utf8')] : undefined;
  const connect = { rejectUnauthorized: tls.verify, ...(ca ? { ca } : {}) };
  if (!policy) {
    const agent = new Agent({ keepAliveTimeout: 10_000, connect });
    return agent.compose(interceptors.redirect({ maxRedirections: 0 }));
  }
  const guarded = (rule: AddressRule) => new Agent({ keepAliveTimeout: 10_000, connect: guardedConnector(connect, rule) });
  const direct = guarded(policy.direct);
  const redirects = guarded(policy.redirects);
  // Outermost: remember where the request started; the redirect handler copies the options it is
  // given, so its follow-ups carry the mark. Innermost: a follow-up to another origin is a redirect.
  const mark: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) =>
    dispatch({ ...opts, [STARTED_AT]: String(opts.origin) } as Dispatcher.DispatchOptions, handler);
  const route: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
    const started = (opts as { [STARTED_AT]?: string })[STARTED_AT];
    return started !== undefined && String(opts.origin) !== started ? redirects.dispatch(opts, handler) : dispatch(opts, handler);
  };
  return direct.compose(route, interceptors.redirect({ maxRedirections: 0 }), mark);
}

/** The option the first dispatch of a request is marked with (see createDispatcher). */
const STARTED_AT = Symbol('harbor-replicator.startedAt');

/** undici's connector with the rule applied: IP literals before connecting, names in the socket's lookup. */
function guardedConnector(connect: Record<string, unknown>, rule: AddressRule): buildConnector.connector {
  const base = buildConnector({ ...connect, lookup: guardedLookup(rule) } as buildConnector.BuildOptions);
  return (opts, callback) => {
    const hostname = opts.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(hostname) !== 0) {
      const why = rule.refusal(hostname, hostname);
      if (why) return callback(new AddressRefusedError(why), null);
    }
    return base(opts, callback);
  };
}

/**
 * Closes a response body we do not read (or stop reading) without an unhandled 'error' event:
 * undici reports a destroyed unread body as aborted.
 */
export function closeBody(body: HttpResponse['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * Reads a small body to its end and drops it, so the connection goes back to the pool (a body
 * destroyed before its end closes the connection: a new TCP connection for the next request).
 * Bodies longer than `limit` are cut and their connection closed.
 */
export async function discard(body: HttpResponse['body'], limit = ERROR_BODY_LIMIT): Promise<void> {
  try {
    await body.dump({ limit });
  } catch {
    closeBody(body);
  }
}

/** Reads at most `limit` bytes of a body as text and discards the rest. */
export async function readBounded(body: HttpResponse['body'], limit = ERROR_BODY_LIMIT): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      chunks.push(total + buf.length > limit ? buf.subarray(0, limit - total) : buf);
      total += buf.length;
      if (total >= limit) break;
    }
  } catch {
    // A broken error body still leaves us the status code.
  } finally {
    closeBody(body);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Builds the RegistryError for an unexpected status, reading a bounded error body. */
export async function errorFromResponse(method: string, res: HttpResponse, retryable?: boolean): Promise<RegistryError> {
  const text = method === 'HEAD' ? (await discard(res.body), '') : await readBounded(res.body);
  return new RegistryError({
    status: res.status,
    method,
    url: res.url,
    errors: parseErrorBody(text),
    retryAfterMs: parseRetryAfter(res.headers['retry-after']),
    ...(retryable !== undefined ? { retryable } : {}),
  });
}

/** Everything the retry loop needs that is shared per registry. */
export interface HttpContext {
  dispatcher: Dispatcher;
  hosts: HostStates;
  /** The registry's `requests_per_second`, when set. */
  rateLimit?: RateLimiter | undefined;
  onEvent?: ((e: HttpEvent) => void) | undefined;
}

function isReplayable(body: RequestBody | undefined): boolean {
  return body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body);
}

/**
 * Sends a request with the per-host backoff gate, bounded retries on 429/5xx/broken connections
 * (honouring `Retry-After`), and one auth refresh on 401. A request whose body is a stream is
 * sent once: a consumed stream is never replayed; the caller resumes instead.
 */
export async function send(ctx: HttpContext, req: HttpRequest): Promise<HttpResponse> {
  const host = ctx.hosts.get(req.url.origin);
  const replayable = isReplayable(req.body);
  const policy = host.policy;
  let authRefreshed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await host.gate(req.signal);
      await ctx.rateLimit?.take(req.signal ?? undefined);
    } catch (err) {
      throw new StoppedError('stopped', { cause: err });
    }
    const headers: Record<string, string> = { ...req.headers };
    const authorization = await req.auth?.header();
    if (authorization) headers.authorization = authorization;
    const started = Date.now();
    let res: HttpResponse;
    try {
      const r = await ctx.dispatcher.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers,
        body: (req.body ?? null) as Dispatcher.DispatchOptions['body'],
        signal: req.signal ?? null,
        ...(req.followRedirects ? { maxRedirections: 5 } : {}),
      } as Dispatcher.RequestOptions);
      res = { status: r.statusCode, headers: r.headers, body: r.body, url: req.url };
    } catch (err) {
      if (isAbort(err) || req.signal?.aborted) throw new StoppedError('stopped', { cause: err });
      const error = RegistryError.fromNetwork(req.method, req.url, err);
      if (error.retryable && replayable && attempt < policy.maxAttempts) {
        const delayMs = host.onFailure();
        ctx.onEvent?.({ kind: 'retry', method: req.method, url: redactUrl(req.url), attempt, delayMs, reason: error.message });
        continue;
      }
      if (error.retryable) host.onFailure(); // the caller's resume passes the same gate
      throw error;
    }
    ctx.onEvent?.({ kind: 'response', method: req.method, url: redactUrl(req.url), status: res.status, ms: Date.now() - started });

    if (res.status === 401 && req.auth && !authRefreshed) {
      const retry = await req.auth.unauthorized(res.headers);
      if (retry) {
        authRefreshed = true;
        if (replayable) {
          await discard(res.body);
          attempt--; // an auth refresh is not a failed attempt
          continue;
        }
        // The stream is spent: tell the caller it may resend (it resumes from what the registry has).
        throw await errorFromResponse(req.method, res, true);
      }
    }
    if (req.expect.includes(res.status)) {
      host.onSuccess();
      return res;
    }
    const error = await errorFromResponse(req.method, res);
    if (error.retryable && replayable && attempt < policy.maxAttempts) {
      if (error.retryAfterMs !== undefined && error.retryAfterMs > policy.maxRetryAfterMs) throw error;
      const delayMs = host.onFailure(error.retryAfterMs);
      ctx.onEvent?.({ kind: 'retry', method: req.method, url: redactUrl(req.url), attempt, delayMs, reason: error.message });
      continue;
    }
    if (error.retryable) host.onFailure(error.retryAfterMs);
    throw error;
  }
}
