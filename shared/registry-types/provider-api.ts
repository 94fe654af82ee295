import type * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import { redactUrl, RegistryError, remoteText, type RegistryErrorEntry } from '../registry/errors.js';
import { discard, header, readBounded, send, type Headers, type HttpContext, type RequestAuth } from '../registry/http.js';
import { PageWalk } from '../registry/pagination.js';
import { describeIssue } from '../util/schema.js';

/**
 * HTTP to a provider's own API (Docker Hub's, GitHub's, GitLab's, Quay's, a cloud's OpenAPI),
 * next to its registry: the same retry loop, backoff and connection rules as the registry's
 * requests (`send`), JSON in and out, every answer read bounded and checked against a schema.
 * A provider is as untrusted as a registry: its text reaches errors only through `remoteText`,
 * and its credential goes to its API's origin only (a page URL it names elsewhere is read without).
 */

/** The most of one API answer we read (a page of a listing). */
const JSON_LIMIT = 32 * 1024 * 1024;

/** Headers that carry a provider credential on one request; `authorization` goes through send's auth hook. */
export type CredentialHeaders = Record<string, string>;

/** A credential of a provider's API, bound to the origin it belongs to. */
export interface ProviderCredential {
  /** `https://host[:port]`: the only origin the headers go to. */
  readonly origin: string;
  /** The headers for one request (a signature is computed from the request itself). */
  headers(call: ProviderCall): Promise<CredentialHeaders> | CredentialHeaders;
}

/** One request to a provider's API. */
export interface ProviderCall {
  method: 'GET' | 'POST' | 'PUT' | 'HEAD' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** A JSON body (serialized here) or bytes as they are. */
  body?: string | undefined;
  credential?: ProviderCredential | undefined;
  signal?: AbortSignal | undefined;
}

/** A provider's answer: its status, headers, and the JSON body checked against the caller's schema. */
export interface ProviderAnswer<T> {
  status: number;
  headers: Headers;
  url: URL;
  data: T;
}

/** Reads a provider's error body into one entry (its code and message), or undefined. */
export type ErrorReader = (json: unknown) => { code?: unknown; message?: unknown } | undefined;

/** A provider error code as it is shown: its own when it looks like one, else UNKNOWN. */
export function providerCode(code: unknown): string {
  return typeof code === 'string' && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(code) ? code : 'UNKNOWN';
}

/**
 * Provider codes that say "later" inside an answer (cloud APIs answer throttling and outages in
 * the body, Tencent's with HTTP 200): transient in the one retry vocabulary, so the task or plan
 * job that met them is retried on its own schedule.
 */
const LATER = /^(RequestLimitExceeded|Throttling|ThrottlingException|TooManyRequests|InternalError|ServiceUnavailable|ServiceBusy|FlowLimitExceeded)/i;

/** The error of a provider's answer: its code and at most 200 escaped characters of its message. */
export function providerError(status: number, method: string, url: URL, entry: { code?: unknown; message?: unknown } | undefined, what: string): RegistryError {
  const errors: RegistryErrorEntry[] = entry
    ? [{ code: providerCode(entry.code), ...(typeof entry.message === 'string' && entry.message ? { message: remoteText(entry.message) } : {}) }]
    : [];
  return new RegistryError({
    status,
    method,
    url,
    errors,
    retryable: errors.some((e) => LATER.test(e.code)),
    // The provider's code when it sent one, and its message: `what: CODE message`.
    message: `${what}${errors[0] ? `: ${[errors[0].code === 'UNKNOWN' ? '' : errors[0].code, errors[0].message ?? ''].filter(Boolean).join(' ')}` : ''}`,
  });
}

/**
 * Statuses a call hands back to its caller: 2xx, and the final 4xx (the provider's error body
 * says why). 408, 429 and 5xx stay with `send`, which retries them on the host's backoff.
 */
const ANSWERED: readonly number[] = [
  ...Array.from({ length: 100 }, (_, i) => 200 + i),
  ...Array.from({ length: 100 }, (_, i) => 400 + i).filter((s) => s !== 408 && s !== 429),
];

export class ProviderApi {
  constructor(
    private readonly ctx: HttpContext,
    /** Names the registry in errors (`registries[2] (quay)`). */
    readonly name: string,
    readonly maxPages: number,
  ) {}

  /** Sends a call; the credential only when the URL is on its origin. */
  async call(c: ProviderCall): Promise<{ status: number; headers: Headers; url: URL; body: string }> {
    const headers: Record<string, string> = { accept: 'application/json', ...c.headers };
    let auth: RequestAuth | undefined;
    if (c.credential && c.url.origin === c.credential.origin) {
      let authorization: string | undefined;
      for (const [k, v] of Object.entries(await c.credential.headers(c))) {
        if (k.toLowerCase() === 'authorization') authorization = v;
        else headers[k] = v;
      }
      // send() puts Authorization only on requests to this origin, and drops any in `headers`.
      if (authorization !== undefined) {
        const value = authorization;
        auth = { origin: c.credential.origin, header: async () => value, unauthorized: async () => false };
      }
    }
    const res = await send(this.ctx, {
      method: c.method,
      url: c.url,
      headers,
      body: c.body ?? null,
      expect: ANSWERED,
      signal: c.signal,
      ...(auth ? { auth } : {}),
    });
    const body = c.method === 'HEAD' ? (await discard(res.body), '') : await readBounded(res.body, JSON_LIMIT);
    return { status: res.status, headers: res.headers, url: res.url, body };
  }

  /**
   * A call whose answer is JSON of `schema`. A 2xx status in `ok` is parsed with the schema (any
   * other status in `ok`, such as a 404 meaning "none", comes back with no data); a status not in
   * `ok` is an error with the provider's code and message as `errorOf` reads them.
   */
  async json<T>(c: ProviderCall, schema: z.ZodMiniType<T>, what: string, opts: { ok?: readonly number[]; errorOf?: ErrorReader } = {}): Promise<ProviderAnswer<T>> {
    const res = await this.call(c);
    const ok = opts.ok ?? [200];
    const parsed = parseJson(res.body);
    if (!ok.includes(res.status)) {
      throw providerError(res.status, c.method, res.url, parsed.ok && opts.errorOf ? opts.errorOf(parsed.value) : undefined, `${this.name}: ${what}`);
    }
    // Another status the caller takes (a 404 that means "none"): its body is not the answer's shape.
    if (res.status < 200 || res.status > 299) return { status: res.status, headers: res.headers, url: res.url, data: undefined as T };
    if (!parsed.ok) throw new ReplicatorError('INVALID_RESPONSE', `${this.name}: ${what} answered something that is not JSON (${redactUrl(res.url)})`);
    const checked = schema.safeParse(parsed.value);
    if (!checked.success) throw new ReplicatorError('INVALID_RESPONSE', `${this.name}: ${what} answered an unexpected shape (${describeIssue(checked.error)})`);
    return { status: res.status, headers: res.headers, url: res.url, data: checked.data };
  }

  /** A bounded walk over pages of `listing` (PAGINATION_LOOP on a repeated page or past `limits.max_pages`). */
  pages(listing: string): PageWalk {
    return new PageWalk(this.name, listing, this.maxPages);
  }
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text === '') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** A `Link: <url>; rel="next"` target of a provider's answer, resolved against the page read (http(s) only). */
export function nextLinkOf(headers: Headers, url: URL): URL | undefined {
  const link = header(headers, 'link');
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (!m) continue;
    let next: URL;
    try {
      next = new URL(m[1]!, url);
    } catch {
      throw new ReplicatorError('INVALID_RESPONSE', `${redactUrl(url)}: the Link header names an invalid URL`);
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new ReplicatorError('INVALID_RESPONSE', `${redactUrl(url)}: the Link header names a ${next.protocol} URL`);
    return next;
  }
  return undefined;
}

/** `base` with its path extended by `segments`, each percent-encoded (names never add segments). */
export function apiUrl(base: URL, segments: readonly string[], query: Record<string, string | number | undefined> = {}, trailingSlash = false): URL {
  const url = new URL(base);
  const prefix = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  for (const s of segments) if (s === '' || s === '.' || s === '..') throw new ReplicatorError('INVALID_NAME', `refusing path segment ${JSON.stringify(s)}`);
  url.pathname = `${prefix}${segments.map((s) => encodeURIComponent(s)).join('/')}${trailingSlash ? '/' : ''}`;
  url.search = '';
  url.hash = '';
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}
