import pLimit from 'p-limit';
import type { Dispatcher } from 'undici';
import { ReplicatorError } from '../errors.js';
import type { ConnectPolicy } from './address-policy.js';
import { Authenticator, pullScope, pushScope, type CredentialsSource, type Scope } from './auth.js';
import { DEFAULT_RETRY_POLICY, HostStates, type RetryPolicy } from './backoff.js';
import { parseChallenge, type Challenge } from './challenge.js';
import { RegistryError } from './errors.js';
import {
  closeBody,
  createDispatcher,
  discard,
  header,
  send,
  type Headers,
  type HttpContext,
  type HttpEvent,
  type HttpRequest,
  type HttpResponse,
} from './http.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { Manifest } from './manifest.js';
import { HostThrottle, MemoryThrottleStore } from './host-throttle.js';
import { ManifestCache } from './manifest-cache.js';
import { RateLimiter } from './rate-limit.js';
import type { SharedSlots, TokenSource } from './shared-budget.js';
import type { ProxySettings } from './proxy.js';
import { nextLink, registryUrl } from './response.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { checkDigest, checkReference, checkRepository, isDigest, isRepositoryName, showName } from './names.js';
import { v2Url } from './urls.js';

/** How to reach one registry. */
export interface RegistryOptions {
  /** API host and port, e.g. `registry-1.docker.io` or `127.0.0.1:5000`. */
  host: string;
  /**
   * `https` (default); `http` for a plain-HTTP registry; `auto` tries HTTPS and falls back to
   * plain HTTP when the host does not speak TLS (skopeo's `--tls-verify=false`).
   */
  scheme?: 'https' | 'http' | 'auto';
  /** Verify TLS certificates (default true). */
  tlsVerify?: boolean;
  /** Extra CA bundle (PEM file) trusted for this registry. */
  caFile?: string | undefined;
  /** A forward proxy for this registry's requests (the environment's, or its own proxy_url). */
  proxy?: ProxySettings | undefined;
  /** Extra CA bundle (PEM text) trusted for this registry. */
  ca?: string | undefined;
  /** Fixed credentials, or a provider called before each request (it caches; ECR tokens expire). */
  credentials?: CredentialsSource | undefined;
  retry?: RetryPolicy;
  /** Backoff state per host; share one instance across clients of a process. */
  hosts?: HostStates;
  /** Average requests per second at most (a token bucket per client). */
  requestsPerSecond?: number | undefined;
  /** This registry's `requests_per_second` shared by every copier (replaces `requestsPerSecond`). */
  tokens?: TokenSource | undefined;
  /** Its `max_concurrency` shared by every copier (on top of this client's own bound). */
  sharedSlots?: SharedSlots | undefined;
  /** Throttled hosts (429, `ratelimit-remaining: 0`): this process's by default. */
  throttle?: HostThrottle | undefined;
  /** Blob transfers at once to or from this registry, across all copies using this client. */
  maxConcurrency?: number | undefined;
  /** Inject a dispatcher (tests); by default one is made from the TLS options and `connectPolicy`. */
  dispatcher?: Dispatcher;
  /** Which addresses connections may reach (checked on resolved addresses); none checked without. */
  connectPolicy?: ConnectPolicy | undefined;
  onEvent?: ((e: HttpEvent) => void) | undefined;
  /** Bounds on what this registry's answers can make us do (the config's `limits:`). */
  limits?: Limits | undefined;
}

/** Digest, media type and size of a manifest, from a HEAD. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/** An open blob upload session at a registry. */
export interface UploadSession {
  /** Where the next PATCH/PUT goes (absolute; the registry may change it after each chunk). */
  location: URL;
  /** Bytes the registry has acknowledged so far. */
  offset: number;
  /** `OCI-Chunk-Min-Length`: the smallest non-final chunk the registry accepts. */
  minChunk: number | undefined;
}

/** Result of a mount attempt: mounted, or an ordinary upload session the registry opened instead. */
export type MountResult = { mounted: true } | { mounted: false; session: UploadSession };

/** The answer to remember per host for `scheme: auto`. */
const schemeMemory = new Map<string, 'https' | 'http'>();
const defaultHosts = new HostStates(DEFAULT_RETRY_POLICY);
/** One process's throttled hosts, shared by its clients unless they are given the copiers' shared one. */
const defaultThrottle = new HostThrottle(new MemoryThrottleStore());

/** What a registry does about referrers, as learnt from its answers. */
export interface ReferrerSupport {
  /**
   * The referrers API: asked once per registry (the first answer decides; concurrent askers wait
   * for it). Undefined inside: that first request failed, and the next caller asks again.
   */
  api?: Promise<boolean | undefined> | undefined;
  /** A manifest with a `subject` was pushed: did the registry answer `OCI-Subject` (it indexes referrers)? */
  indexes?: boolean | undefined;
}

/**
 * A client of one registry over the OCI distribution API. Each method is one protocol
 * operation; auth, retries and backoff happen below it, streams are never buffered here.
 */
export class RegistryClient {
  readonly host: string;
  private readonly ctx: HttpContext;
  private readonly auth: Authenticator;
  private readonly scheme: 'https' | 'http' | 'auto';
  private pinged: Promise<URL> | undefined;
  /** Bounds blob transfers through this client (`max_concurrency` of the registry). */
  readonly transfers: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Pages, index fan-out, manifest bytes and nesting this registry may make us walk. */
  readonly limits: Limits;
  /** What this registry does about referrers, as learnt from its answers (referrers-api.ts). */
  readonly referrerSupport: ReferrerSupport = {};
  /** Manifests read, answered again without a request when asked for by digest. */
  private readonly manifests = new ManifestCache();

  constructor(readonly options: RegistryOptions) {
    this.host = options.host;
    this.scheme = options.scheme ?? 'https';
    const tlsVerify = options.tlsVerify ?? true;
    this.ctx = {
      dispatcher: options.dispatcher ?? createDispatcher(
          { verify: tlsVerify, caFile: options.caFile, ca: options.ca },
          options.connectPolicy,
          // A plain-HTTP registry's credentials would be readable by the proxy in an absolute-URI request: tunnel then.
          options.proxy ? { ...options.proxy, tunnelHttp: options.credentials !== undefined } : undefined,
        ),
      hosts: options.hosts ?? (options.retry ? new HostStates(options.retry) : defaultHosts),
      onEvent: options.onEvent,
      rateLimit: options.tokens ?? (options.requestsPerSecond ? new RateLimiter(options.requestsPerSecond) : undefined),
      throttle: options.throttle ?? defaultThrottle,
    };
    const local = pLimit(options.maxConcurrency ?? Number.POSITIVE_INFINITY);
    const shared = options.sharedSlots;
    this.transfers = shared ? (fn) => local(() => shared.run(fn)) : local;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.auth = new Authenticator(this.ctx, this.host, options.credentials, tlsVerify && this.scheme === 'https');
  }

  /** The retry policy of this registry: also bounds stream-level attempts (uploads, resumed reads). */
  get retryPolicy(): RetryPolicy {
    return this.ctx.hosts.policy;
  }

  /**
   * `GET /v2/`: finds the scheme (for `auto`) and the auth challenge. Done once per client;
   * every other method calls it first. Returns the registry's origin.
   */
  ping(signal?: AbortSignal, opts: { once?: boolean } = {}): Promise<URL> {
    this.pinged ??= this.doPing(signal, opts.once === true).catch((err: unknown) => {
      this.pinged = undefined;
      throw err;
    });
    return this.pinged;
  }

  private async doPing(signal: AbortSignal | undefined, once: boolean): Promise<URL> {
    const remembered = schemeMemory.get(this.host);
    const order: Array<'https' | 'http'> =
      this.scheme === 'auto' ? (remembered ? [remembered] : ['https', 'http']) : [this.scheme];
    let lastError: unknown;
    for (const scheme of order) {
      const origin = new URL(`${scheme}://${this.host}`);
      try {
        const challenge = await this.pingOnce(origin, signal, once);
        this.auth.useChallenge(challenge, origin);
        if (this.scheme === 'auto') schemeMemory.set(this.host, scheme);
        return origin;
      } catch (err) {
        lastError = err;
        // Fall back to plain HTTP only when HTTPS got no HTTP answer at all.
        if (!(err instanceof RegistryError) || err.status !== undefined) throw err;
      }
    }
    throw lastError;
  }

  private async pingOnce(origin: URL, signal: AbortSignal | undefined, once: boolean): Promise<Challenge | undefined> {
    const res = await send(this.ctx, { method: 'GET', url: new URL('/v2/', origin), expect: [200, 401], signal, once });
    await discard(res.body);
    if (res.status === 200) return undefined;
    const challenge = parseChallenge(res.headers['www-authenticate']);
    if (!challenge) {
      throw new RegistryError({ status: 401, method: 'GET', url: new URL('/v2/', origin), message: 'no WWW-Authenticate challenge' });
    }
    return challenge;
  }

  /**
   * Checks the credentials as Harbor's "Test Connection" does: an authenticated `GET /v2/`
   * (for token auth, a token is fetched with them). Throws when they are refused. `once`: no
   * retry of a transient failure (a person waits for the answer).
   */
  async checkCredentials(signal?: AbortSignal, opts: { once?: boolean } = {}): Promise<void> {
    const res = await this.request({ method: 'GET', url: (origin) => new URL('/v2/', origin), scopes: [], expect: [200], signal, once: opts.once === true });
    await discard(res.body);
  }

  /**
   * One request to this registry, authenticated with `scopes`. `url` is absolute (a `Link`, an
   * upload `Location`: the registry's, so credentials go along only when it is on the registry's
   * origin), or built from the origin the ping found.
   */
  async request(
    req: Omit<HttpRequest, 'url' | 'auth'> & { url: URL | ((origin: URL) => URL); scopes: readonly Scope[] },
  ): Promise<HttpResponse> {
    const origin = await this.ping(req.signal);
    const url = typeof req.url === 'function' ? req.url(origin) : req.url;
    return send(this.ctx, { ...req, url, auth: this.auth.forScopes(req.scopes) });
  }

  /** `where` of a name check: this registry and the operation. */
  private at(what: string): string {
    return `${this.host} ${what}`;
  }

  // ---- manifests ---------------------------------------------------------------------------

  /**
   * GETs a manifest by tag or digest, keeping its bytes and verifying its digest. At most
   * `maxBytes` are read (RESPONSE_TOO_LARGE beyond): 8 MiB, or less when a copy's manifest
   * budget has less left.
   */
  async getManifest(repository: string, reference: string, signal?: AbortSignal, maxBytes = MANIFEST_SIZE_LIMIT): Promise<Manifest> {
    checkRepository(repository, this.at('manifest'));
    checkReference(reference, this.at(`manifest of ${repository}`));
    const byDigest = isDigest(reference);
    const cached = byDigest ? this.manifests.get(repository, reference) : undefined;
    if (cached && cached.bytes.length <= Math.min(maxBytes, MANIFEST_SIZE_LIMIT)) return cached;
    const res = await this.request({
      method: 'GET',
      url: (origin) => v2Url(origin, repository, ['manifests', reference]),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [pullScope(repository)],
      expect: [200],
      signal,
    });
    const what = `${this.host}/${repository}${byDigest ? '@' : ':'}${reference}`;
    const bytes = await readAll(res, Math.min(maxBytes, MANIFEST_SIZE_LIMIT), what);
    const expected = byDigest ? reference : headerDigest(res.headers, what);
    const manifest = Manifest.parse(bytes, header(res.headers, 'content-type'), what, expected);
    this.manifests.add(repository, manifest);
    return manifest;
  }

  /** HEADs a manifest; undefined when the registry has no such tag or digest. */
  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestHead | undefined> {
    checkRepository(repository, this.at('manifest'));
    checkReference(reference, this.at(`manifest of ${repository}`));
    const res = await this.request({
      method: 'HEAD',
      url: (origin) => v2Url(origin, repository, ['manifests', reference]),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [pullScope(repository)],
      expect: [200, 404],
      signal,
    });
    await discard(res.body);
    if (res.status === 404) return undefined;
    const digest = headerDigest(res.headers, `${this.host}/${repository}:${reference}`);
    if (!digest) {
      // Some registries omit Docker-Content-Digest on HEAD: fall back to a GET.
      const m = await this.getManifest(repository, reference, signal);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    }
    return {
      digest,
      mediaType: header(res.headers, 'content-type')?.split(';', 1)[0] ?? '',
      size: Number(header(res.headers, 'content-length') ?? 0),
    };
  }

  /** PUTs a manifest's bytes unchanged, with its media type, under a tag or its digest. */
  async putManifest(repository: string, reference: string, manifest: Manifest, signal?: AbortSignal): Promise<void> {
    checkRepository(repository, this.at('manifest push'));
    checkReference(reference, this.at(`manifest push to ${repository}`));
    const res = await this.request({
      method: 'PUT',
      url: (origin) => v2Url(origin, repository, ['manifests', reference]),
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
      scopes: [pushScope(repository)],
      expect: [201, 200, 202],
      signal,
    });
    await discard(res.body);
    // OCI 1.1: a registry that indexes referrers itself answers a push with a subject with OCI-Subject.
    if (manifest.subject) {
      const answered = header(res.headers, 'oci-subject');
      this.referrerSupport.indexes = answered !== undefined && answered !== '';
    }
    const digest = headerDigest(res.headers, `${this.host}/${repository}:${reference}`);
    if (digest && digest !== manifest.digest) {
      throw new ReplicatorError(
        'DIGEST_MISMATCH',
        `${this.host}/${repository}:${reference}: registry stored the manifest as ${digest}, expected ${manifest.digest}`,
      );
    }
  }

  /** DELETEs a manifest by digest; false when it was already gone. */
  async deleteManifest(repository: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    checkRepository(repository, this.at('manifest deletion'));
    checkDigest(digest, this.at(`manifest deletion in ${repository}`));
    const res = await this.request({
      method: 'DELETE',
      url: (origin) => v2Url(origin, repository, ['manifests', digest]),
      scopes: [`repository:${repository}:delete`, pushScope(repository)],
      expect: [202, 200, 204, 404],
      signal,
    });
    await discard(res.body);
    return res.status !== 404;
  }

  // ---- listing -----------------------------------------------------------------------------

  /**
   * One page of `/v2/_catalog` (asking `n` per page); `next` is the page after it from the
   * `Link` header, when there is one; `url` the page read. The caller bounds the walk
   * (PageWalk): a registry's `Link` may point anywhere, back to itself included.
   */
  async catalogPage(next?: URL, n = 1000, signal?: AbortSignal, scopes: readonly Scope[] = ['registry:catalog:*']): Promise<ListPage> {
    const res = await this.request({
      method: 'GET',
      url: next ?? ((origin) => withQuery(new URL('/v2/_catalog', origin), { n: String(n) })),
      // Quay's token service refuses the catalog scope (its type asks with none, as Harbor does).
      scopes,
      expect: [200],
      signal,
    });
    const body = (await readJson(res, LIST_LIMIT, `${this.host} catalog`)) as { repositories?: unknown };
    return { items: stringArray(body.repositories), next: nextLink(res), url: res.url };
  }

  /**
   * One page of `/v2/<name>/tags/list`. docker-registry 2.8 ignores `n` and answers every tag,
   * unsorted, in one page; registries that paginate send a `Link` to the next page.
   */
  async tagsPage(repository: string, next?: URL, n = 1000, signal?: AbortSignal, extraScopes: readonly Scope[] = []): Promise<ListPage> {
    checkRepository(repository, this.at('tags'));
    const res = await this.request({
      method: 'GET',
      url: next ?? ((origin) => withQuery(v2Url(origin, repository, ['tags', 'list']), { n: String(n) })),
      // Azure ACR lists tags with `metadata_read` besides pull (its type adds it, as Harbor does).
      scopes: [pullScope(repository), ...extraScopes],
      expect: [200, 404],
      signal,
    });
    if (res.status === 404) {
      await discard(res.body);
      return { items: [], next: undefined, url: res.url };
    }
    const body = (await readJson(res, LIST_LIMIT, `${this.host}/${repository} tags`)) as { tags?: unknown };
    return { items: stringArray(body.tags), next: nextLink(res), url: res.url };
  }

  // ---- blobs -------------------------------------------------------------------------------

  /** HEADs a blob; its size, or undefined when the registry does not have it. */
  async headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    checkRepository(repository, this.at('blob'));
    checkDigest(digest, this.at(`blob of ${repository}`));
    const res = await this.request({
      method: 'HEAD',
      url: (origin) => v2Url(origin, repository, ['blobs', digest]),
      scopes: [pullScope(repository)],
      expect: [200, 404],
      followRedirects: true,
      signal,
    });
    await discard(res.body);
    if (res.status === 404) return undefined;
    return Number(header(res.headers, 'content-length') ?? 0);
  }

  /**
   * GETs a blob, or the bytes `[start, end)` of it (a `Range` request), following redirects to
   * object storage without our credentials. The caller consumes the streamed body.
   */
  async getBlob(
    repository: string,
    digest: string,
    range: { start: number; end?: number | undefined } = { start: 0 },
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    checkRepository(repository, this.at('blob'));
    checkDigest(digest, this.at(`blob of ${repository}`));
    const ranged = range.start > 0 || range.end !== undefined;
    return this.request({
      method: 'GET',
      url: (origin) => v2Url(origin, repository, ['blobs', digest]),
      headers: ranged ? { range: `bytes=${range.start}-${range.end !== undefined ? range.end - 1 : ''}` } : {},
      scopes: [pullScope(repository)],
      expect: ranged ? [206, 200] : [200],
      followRedirects: true,
      // The blob reader resumes a failed or cut GET itself: one retry layer per blob GET.
      once: true,
      signal,
    });
  }

  /**
   * A transient failure seen outside a request (a body cut mid-stream): every request to this
   * registry then waits its backoff, as after a failed request.
   */
  async backOff(signal?: AbortSignal): Promise<void> {
    const origin = await this.ping(signal);
    this.ctx.hosts.get(origin.origin).onFailure();
  }

  /**
   * Cross-repository mount (`POST ?mount=&from=`): 201 = mounted; 202 = the registry opened an
   * ordinary upload session instead, which the caller uses. Asks pull scope on `from` too.
   */
  async mountBlob(repository: string, digest: string, from: string, signal?: AbortSignal): Promise<MountResult> {
    checkRepository(repository, this.at('blob mount'));
    checkDigest(digest, this.at(`blob mount into ${repository}`));
    checkRepository(from, this.at(`blob mount into ${repository} from`));
    const res = await this.request({
      method: 'POST',
      url: (origin) => withQuery(v2Url(origin, repository, ['blobs', 'uploads'], true), { mount: digest, from }),
      headers: { 'content-length': '0' },
      scopes: [pushScope(repository), pullScope(from)],
      expect: [201, 202],
      signal,
    });
    await discard(res.body);
    if (res.status === 201) return { mounted: true };
    return { mounted: false, session: sessionFrom(res, 0) };
  }

  /** Opens an upload session (`POST /blobs/uploads/`). */
  async startUpload(repository: string, signal?: AbortSignal): Promise<UploadSession> {
    checkRepository(repository, this.at('blob upload'));
    const res = await this.request({
      method: 'POST',
      url: (origin) => v2Url(origin, repository, ['blobs', 'uploads'], true),
      headers: { 'content-length': '0' },
      scopes: [pushScope(repository)],
      expect: [202],
      signal,
    });
    await discard(res.body);
    return sessionFrom(res, 0);
  }

  /**
   * PATCHes `length` bytes at the session's offset (`Content-Range: start-end`, inclusive, no
   * `bytes=`), streaming `body`. Returns the session as the registry reports it afterwards.
   */
  async uploadChunk(
    repository: string,
    session: UploadSession,
    body: AsyncIterable<Uint8Array>,
    length: number,
    signal?: AbortSignal,
  ): Promise<UploadSession> {
    checkRepository(repository, this.at('blob upload'));
    const res = await this.request({
      method: 'PATCH',
      url: session.location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
        'content-range': `${session.offset}-${session.offset + length - 1}`,
      },
      body,
      scopes: [pushScope(repository)],
      expect: [202],
      signal,
    });
    await discard(res.body);
    const next = sessionFrom(res, session.offset + length, session);
    return next;
  }

  /** GETs the upload's status: the acknowledged offset, or undefined when the session is gone. */
  async uploadStatus(repository: string, session: UploadSession, signal?: AbortSignal): Promise<UploadSession | undefined> {
    checkRepository(repository, this.at('blob upload'));
    const res = await this.request({
      method: 'GET',
      url: session.location,
      scopes: [pushScope(repository)],
      expect: [204, 404],
      signal,
    });
    await discard(res.body);
    if (res.status === 404) return undefined;
    return sessionFrom(res, 0, session);
  }

  /**
   * Completes an upload: `PUT <location>?digest=` with the remaining bytes (a stream of
   * `length` bytes, the whole blob for a monolithic upload) or none.
   */
  async completeUpload(
    repository: string,
    session: UploadSession,
    digest: string,
    body?: { stream: AsyncIterable<Uint8Array>; length: number },
    signal?: AbortSignal,
  ): Promise<void> {
    checkRepository(repository, this.at('blob upload'));
    checkDigest(digest, this.at(`blob upload to ${repository}`));
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    const headers: Record<string, string> = { 'content-length': String(body?.length ?? 0) };
    if (body) headers['content-type'] = 'application/octet-stream';
    const res = await this.request({
      method: 'PUT',
      url,
      headers,
      body: body?.stream ?? null,
      scopes: [pushScope(repository)],
      expect: [201, 204],
      signal,
    });
    await discard(res.body);
  }

  /** Cancels an upload session (best effort: the registry expires it anyway). */
  async cancelUpload(repository: string, session: UploadSession): Promise<void> {
    if (!isRepositoryName(repository)) return;
    try {
      const res = await this.request({
        method: 'DELETE',
        url: session.location,
        scopes: [pushScope(repository)],
        expect: [204, 200, 202, 404],
      });
      await discard(res.body);
    } catch {
      // best effort
    }
  }
}

/** One page of a listing: its items, the next page's URL from `Link`, and the URL read. */
export interface ListPage {
  items: string[];
  next: URL | undefined;
  url: URL;
}

/** `url` with these query parameters set (encoded by URLSearchParams). */
function withQuery(url: URL, query: Record<string, string>): URL {
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url;
}

/** A listing page above this size is refused (a page of 100,000 tags is about 3 MiB). */
const LIST_LIMIT = 32 * 1024 * 1024;

async function readJson(res: HttpResponse, limit: number, what: string): Promise<unknown> {
  const bytes = await readAll(res, limit, what);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ReplicatorError('INVALID_RESPONSE', `${what}: the registry answered something that is not JSON`);
  }
}

function stringArray(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Manifests above this size are refused (the spec suggests registries accept at least 4 MiB). */
export const MANIFEST_SIZE_LIMIT = 8 * 1024 * 1024;

/** `Docker-Content-Digest`, when sent; a value that is not `algorithm:hex` is a broken answer. */
function headerDigest(headers: Headers, what: string): string | undefined {
  const digest = header(headers, 'docker-content-digest')?.trim();
  if (!digest) return undefined;
  if (!isDigest(digest)) {
    throw new ReplicatorError('INVALID_RESPONSE', `${what}: the registry sent an invalid Docker-Content-Digest ${showName(digest)}`);
  }
  return digest;
}

/** Reads a whole (small, bounded) body: manifests and listings, never blobs. */
async function readAll(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length') ?? NaN);
  if (declared > limit) {
    closeBody(res.body);
    throw new ReplicatorError('RESPONSE_TOO_LARGE', `${what}: ${declared} bytes exceeds ${limit}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      closeBody(res.body);
      throw new ReplicatorError('RESPONSE_TOO_LARGE', `${what}: more than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads an upload session from a 202/204: `Location` resolved against the request URL (it may
 * be relative), `Range: 0-N` as the acknowledged offset, `OCI-Chunk-Min-Length`.
 */
function sessionFrom(res: HttpResponse, fallbackOffset: number, previous?: UploadSession): UploadSession {
  const location = header(res.headers, 'location');
  if (!location && !previous) {
    throw new RegistryError({ status: res.status, method: 'POST', url: res.url, message: 'upload answer has no Location' });
  }
  const range = header(res.headers, 'range');
  const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
  // docker-registry answers "0-0" for both 0 and 1 bytes received: trust what we expected then.
  const end = m ? Number(m[1]) : undefined;
  const offset = end === undefined ? fallbackOffset : end === 0 ? Math.min(fallbackOffset, 1) : end + 1;
  const min = Number(header(res.headers, 'oci-chunk-min-length'));
  return {
    location: location ? registryUrl(location, res, 'upload Location') : previous!.location,
    offset,
    minChunk: Number.isFinite(min) && min > 0 ? min : previous?.minChunk,
  };
}
