import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { isAbort, ReplicatorError, StoppedError } from '../errors.js';
import { AddressRefusedError, guardedLookup, type AddressRule, type ConnectPolicy } from './address-policy.js';
import { ProxiedDispatcher, type ProxySettings } from './proxy.js';
import type { HostStates } from './backoff.js';
import { parseErrorBody, parseRetryAfter, RegistryError, redactUrl } from './errors.js';
import { rateLimitRemaining, type HostThrottle, type ProbeTicket, type ThrottleOutcome } from './host-throttle.js';
import { scopedHttpListener, type HttpEvent, type RateLimitHeaders } from './event-scope.js';
import type { TokenSource } from './shared-budget.js';

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
  /**
   * Follow redirects (blob GETs to object storage; requests without a body only), at most 5 hops.
   * Each hop gets `Authorization` only when it is on the auth's origin.
   */
  followRedirects?: boolean;
  /**
   * Send once, even when the failure is transient: the caller is the retry layer (a blob GET,
   * which the blob reader resumes from the first byte it has not got). A transient failure still
   * moves the host's backoff, so the caller's next request waits it out.
   */
  once?: boolean;
  signal?: AbortSignal | undefined;
  /**
   * Adds `Authorization` before each attempt, only to `auth.origin`, and reacts once to a 401
   * from that origin. The only way credentials reach a request: an `authorization` in `headers`
   * is dropped.
   */
  auth?: RequestAuth;
}

/** What the auth layer plugs into the retry loop. */
export interface RequestAuth {
  /**
   * The origin (`https://host:port`) the credentials belong to: the registry's (where its `/v2/`
   * ping answered), a token realm, a Harbor's API. A `Link`, an upload `Location` or a redirect
   * elsewhere is requested without them, and a 401 from elsewhere is an error, never a reason to
   * authenticate (go-containerregistry's transport matches the host the same way).
   */
  readonly origin: string;
  header(): Promise<string | undefined>;
  /** Called on a 401 from `origin`: returns true when a retry with a fresh header makes sense. */
  unauthorized(headers: Headers): Promise<boolean>;
}

/** One header's first value. */
export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An answered request; the caller must consume or dump `body`. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

export type { HttpEvent, RateLimitHeaders } from './event-scope.js';

/** `ratelimit-remaining: 76;w=21600` (and `ratelimit-limit`), when the answer has them. */
export function rateLimitOf(headers: Headers): RateLimitHeaders | undefined {
  const remaining = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(header(headers, 'ratelimit-remaining') ?? '');
  if (!remaining) return undefined;
  const limit = /^\s*(\d+)/.exec(header(headers, 'ratelimit-limit') ?? '');
  return {
    remaining: Number(remaining[1]),
    ...(limit ? { limit: Number(limit[1]) } : {}),
    ...(remaining[2] ? { windowSeconds: Number(remaining[2]) } : {}),
  };
}

/** TLS settings of one registry. */
export interface TlsOptions {
  /** Verify certificates (default true). */
  verify: boolean;
  /** PEM bundle added to the system roots. */
  caFile?: string | undefined;
  /** PEM bundle text added to the system roots (a private CA from a secret). */
  ca?: string | undefined;
}

/** The bound on error bodies we read (go-containerregistry reads 64 KiB too). */
export const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * An undici dispatcher for one TLS configuration. Redirects are followed by `send`, hop by hop,
 * not by undici's redirect interceptor: that one drops `Authorization` when a hop leaves the
 * origin (on 307/308 too), but hides where the final answer came from, and a 401 from object
 * storage must not be taken for the registry's challenge.
 *
 * With a `policy`, every connection is checked against it at connect time, on the resolved
 * address: the client's own requests against `policy.direct`, the redirect hops `send` follows
 * to another origin against `policy.redirects` (through the dispatcher's `redirects` agent),
 * so DNS cannot dodge either.
 */
export function createDispatcher(tls: TlsOptions, policy?: ConnectPolicy, proxy?: ProxySettings & { tunnelHttp: boolean }): Dispatcher {
  const extra = [...(tls.caFile ? [readFileSync(tls.caFile, 'utf8')] : []), ...(tls.ca ? [tls.ca] : [])];
  const ca = extra.length > 0 ? [...rootCertificates, ...extra] : undefined;
  const connect = { rejectUnauthorized: tls.verify, ...(ca ? { ca } : {}) };
  const agent = (rule: AddressRule | undefined) =>
    new Agent({ keepAliveTimeout: 10_000, connect: rule ? guardedConnector(connect, rule) : connect });
  const direct = agent(policy?.direct);
  const redirects = policy ? agent(policy.redirects) : undefined;
  if (!proxy) return redirects ? Object.assign(direct, { redirects }) : direct;
  // Through a forward proxy: the registry's own requests and its redirects each keep their rules.
  const via = (to: Dispatcher, rule: AddressRule | undefined) => new ProxiedDispatcher(proxy, to, { tls: connect, rule, tunnelHttp: proxy.tunnelHttp });
  return Object.assign(via(direct, policy?.direct), { redirects: via(redirects ?? direct, policy?.redirects) });
}

/** A dispatcher whose redirect hops to another origin go through their own, differently checked, agent. */
export type PolicedDispatcher = Dispatcher & { readonly redirects?: Dispatcher };

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
  /** The registry's `requests_per_second`, when set (this process's, or shared by every copier). */
  rateLimit?: TokenSource | undefined;
  /** Hosts that answered 429 or `ratelimit-remaining: 0` wait, here or in every copier. */
  throttle?: HostThrottle | undefined;
  onEvent?: ((e: HttpEvent) => void) | undefined;
}

/** Tells the client's listener, and the listener of the caller's context (a task's log, see event-scope.ts). */
function notify(ctx: HttpContext, e: HttpEvent): void {
  ctx.onEvent?.(e);
  const scoped = scopedHttpListener();
  if (!scoped) return;
  try {
    scoped(e);
  } catch {
    // A listener must not break a request.
  }
}

function isReplayable(body: RequestBody | undefined): boolean {
  return body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body);
}

/** Redirect hops followed for one request (blob GETs: registry -> storage, sometimes via a CDN). */
export const MAX_REDIRECTS = 5;
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/** An address refusal in a connection error or its causes. */
function refusalIn(err: unknown): AddressRefusedError | undefined {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AddressRefusedError) return e;
  }
  return undefined;
}

/** The connection failed before an HTTP answer (kept apart from the auth layer's own errors). */
class NoAnswer {
  constructor(readonly cause: unknown) {}
}

/**
 * One attempt: the request and, when asked, its redirects. `Authorization` goes only to the
 * auth's origin, hop by hop; the answer carries the URL it came from.
 */
async function exchange(ctx: HttpContext, req: HttpRequest): Promise<HttpResponse> {
  let url = req.url;
  let method = req.method;
  const follow = req.followRedirects === true && (req.body === undefined || req.body === null);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) if (k.toLowerCase() !== 'authorization') headers[k] = v;
    if (req.auth && url.origin === req.auth.origin) {
      const authorization = await req.auth.header();
      if (authorization) headers.authorization = authorization;
    }
    const started = Date.now();
    let r: Dispatcher.ResponseData;
    try {
      // A hop to another origin is a redirect (object storage): its own connection rules.
      const dispatcher = hop > 0 && url.origin !== req.url.origin ? ((ctx.dispatcher as PolicedDispatcher).redirects ?? ctx.dispatcher) : ctx.dispatcher;
      r = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: (req.body ?? null) as Dispatcher.DispatchOptions['body'],
        signal: req.signal ?? null,
        // undici closes the connection after every HEAD (in case a server sends a body with its
        // answer), so each in-sync check, blob HEAD and moved-tag check paid a TCP handshake and
        // the next request on that origin another. Registries answer HEAD without a body (the
        // distribution spec, Go's net/http): keep the connection.
        ...(method === 'HEAD' ? { reset: false } : {}),
      } as Dispatcher.RequestOptions);
    } catch (err) {
      throw new NoAnswer(err);
    }
    const res: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url };
    notify(ctx, { kind: 'response', method, url: redactUrl(url), status: res.status, ms: Date.now() - started, rateLimit: rateLimitOf(res.headers) });
    const location = header(res.headers, 'location');
    if (!follow || !REDIRECT_STATUS.has(res.status) || !location) return res;
    await discard(res.body);
    if (hop >= MAX_REDIRECTS) {
      throw new RegistryError({ status: res.status, method, url, retryable: false, message: `more than ${MAX_REDIRECTS} redirects` });
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new ReplicatorError('INVALID_RESPONSE', `${method} ${redactUrl(url)}: redirect to an invalid URL`);
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new ReplicatorError('INVALID_RESPONSE', `${method} ${redactUrl(url)}: redirect to a ${next.protocol} URL`);
    }
    if (res.status === 303 && method !== 'HEAD') method = 'GET';
    url = next;
  }
}

/** Tells the host's throttle how it answered: 429 or `ratelimit-remaining: 0` throttle it. */
async function observeThrottle(ctx: HttpContext, url: URL, res: HttpResponse | undefined, probe: ProbeTicket | undefined): Promise<void> {
  if (!ctx.throttle) return;
  let outcome: ThrottleOutcome = 'other';
  if (res && res.url.origin !== url.origin) {
    outcome = 'ok'; // the host answered with a redirect; storage's answers are not the host's
  } else if (res) {
    const throttled = res.status === 429 || rateLimitRemaining(header(res.headers, 'ratelimit-remaining')) === 0;
    outcome = throttled ? 'throttled' : res.status < 500 ? 'ok' : 'other';
  }
  // Said by a request whose origin is the throttled host only (not by redirects to storage).
  const retryAfterMs = res?.status === 429 ? parseRetryAfter(res.headers['retry-after']) : undefined;
  try {
    await ctx.throttle.observe(url.origin, outcome, retryAfterMs, probe);
  } catch {
    // The throttle is advice: a table that cannot be written must not fail the copy.
  }
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
    let probe: ProbeTicket | undefined;
    try {
      // Awaited only when there is something to wait for (a backoff, a rate limit): each await
      // is a turn of the microtask queue on every request.
      if (host.waiting()) await host.gate(req.signal);
      if (ctx.rateLimit) await ctx.rateLimit.take(req.signal ?? undefined);
      if (ctx.throttle) probe = await ctx.throttle.gate(req.url.origin, req.signal ?? undefined);
    } catch (err) {
      if (!isAbort(err) && !req.signal?.aborted) throw err;
      throw new StoppedError('stopped', { cause: err });
    }
    let res: HttpResponse;
    try {
      res = await exchange(ctx, req);
      await observeThrottle(ctx, req.url, res, probe);
    } catch (caught) {
      await observeThrottle(ctx, req.url, undefined, probe);
      // The auth header (a token request), a bad redirect: their own errors, as they are.
      if (!(caught instanceof NoAnswer)) throw caught;
      const err = caught.cause;
      if (isAbort(err) || req.signal?.aborted) throw new StoppedError('stopped', { cause: err });
      // Refused by the connection rules before any connection: ours, final, and said as such.
      const refused = refusalIn(err);
      if (refused) throw refused;
      const error = RegistryError.fromNetwork(req.method, req.url, err);
      if (error.retryable && replayable && !req.once && attempt < policy.maxAttempts) {
        const delayMs = host.onFailure();
        notify(ctx, { kind: 'retry', method: req.method, url: redactUrl(req.url), attempt, delayMs, reason: error.message });
        continue;
      }
      if (error.retryable) host.onFailure(); // the caller's resume passes the same gate
      throw error;
    }

    // Only the credentials' own origin may ask for them: a 401 from a Link, an upload Location
    // or object storage elsewhere is an answer, not a challenge.
    if (res.status === 401 && req.auth && !authRefreshed && res.url.origin === req.auth.origin) {
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
    if (error.retryable && replayable && !req.once && attempt < policy.maxAttempts) {
      if (error.retryAfterMs !== undefined && error.retryAfterMs > policy.maxRetryAfterMs) throw error;
      const delayMs = host.onFailure(error.retryAfterMs);
      notify(ctx, { kind: 'retry', method: req.method, url: redactUrl(req.url), attempt, delayMs, reason: error.message, status: error.status });
      continue;
    }
    if (error.retryable) host.onFailure(error.retryAfterMs);
    throw error;
  }
}
