import { ReplicatorError } from '../errors.js';

/** One entry of the distribution spec's error envelope `{"errors": [{code, message, detail}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** HTTP statuses worth another attempt (after a backoff). */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
/** Registry error codes that say "try again later" whatever the status. */
const RETRYABLE_CODES = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE']);
/**
 * Connection-level failures (undici and Node codes) after which the same request may succeed.
 * Anything else from the socket layer (TLS verification, DNS) is permanent for our purposes.
 */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The distribution spec's code for a bare status (HEAD answers and proxies send no body). */
const STATUS_CODES: Record<number, string> = { 401: 'UNAUTHORIZED', 403: 'DENIED', 429: 'TOOMANYREQUESTS' };

/** Query parameters whose values are credentials or signatures (S3, GCS, Azure, tokens). */
const SECRET_QUERY = /sig|token|credential|key|auth|password|secret|_state|policy/i;

/**
 * A URL safe to print: no userinfo, and signature/token query values replaced. Used in every
 * error and log line; presigned storage URLs carry credentials in their query.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return '<invalid url>';
  }
  u.username = '';
  u.password = '';
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_QUERY.test(key)) u.searchParams.set(key, 'REDACTED');
  }
  return u.toString();
}

/** Every failure talking to a registry: HTTP status or network error, with the registry's codes. */
export class RegistryError extends ReplicatorError {
  override name = 'RegistryError';
  /** HTTP status, or undefined for a connection-level failure. */
  readonly status: number | undefined;
  readonly method: string;
  /** The request URL with credentials and signatures removed. */
  readonly url: string;
  /** The registry's error entries, as sent. */
  readonly errors: RegistryErrorEntry[];
  /** Whether the same request may succeed later (429, 5xx, broken connection). */
  readonly retryable: boolean;
  /** Server-requested delay before the next attempt (`Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(init: {
    status?: number;
    method: string;
    url: string | URL;
    errors?: RegistryErrorEntry[];
    retryable?: boolean;
    retryAfterMs?: number;
    message?: string;
    cause?: unknown;
  }) {
    const errors = init.errors ?? [];
    const codes = errors.map((e) => e.code);
    const url = redactUrl(init.url);
    const code = codes[0] ?? (init.status === undefined ? 'NETWORK' : (STATUS_CODES[init.status] ?? `HTTP_${init.status}`));
    const retryable =
      init.retryable ??
      ((init.status !== undefined && RETRYABLE_STATUS.has(init.status)) || codes.some((c) => RETRYABLE_CODES.has(c)));
    const what = init.status === undefined ? 'failed' : `answered ${init.status}`;
    const reason =
      init.message ??
      (errors.length > 0
        ? errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ')
        : describeStatus(init.status));
    super(code, `${init.method} ${url} ${what}${reason ? ` (${reason})` : ''}`, { cause: init.cause });
    this.status = init.status;
    this.method = init.method;
    this.url = url;
    this.errors = errors;
    this.retryable = retryable;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** The registry's error codes, e.g. `['MANIFEST_UNKNOWN']`. */
  get codes(): string[] {
    return this.errors.map((e) => e.code);
  }

  /** Wraps a thrown network/undici error for a request that got no HTTP answer. */
  static fromNetwork(method: string, url: string | URL, cause: unknown): RegistryError {
    const c = cause as { code?: string; message?: string; cause?: { code?: string } } | null;
    const code = c?.code ?? c?.cause?.code;
    const retryable = code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
    const text = (c?.message ?? String(cause)).split('\n', 1)[0]!.trim();
    return new RegistryError({
      method,
      url,
      retryable,
      message: networkHint(code) ?? `${code ?? 'error'}: ${text}`,
      cause,
    });
  }
}

/** True for connection-level errors (a dropped socket, a reset) that deserve another try. */
export function isRetryableNetworkError(err: unknown): boolean {
  if (err instanceof RegistryError) return err.retryable;
  const c = err as { code?: string; cause?: { code?: string } } | null;
  const code = c?.code ?? c?.cause?.code;
  return code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
}

/** Plain words for the TLS failures users meet first. */
function networkHint(code: string | undefined): string | undefined {
  switch (code) {
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return 'TLS handshake failed: the server does not speak HTTPS (a plain-HTTP registry needs tls-verify=false or an http:// URL)';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS certificate not trusted (${code}): add its CA (a CA file) or turn verification off for this registry`;
    case 'ECONNREFUSED':
      return 'connection refused (is the registry running at this address?)';
    case 'ENOTFOUND':
      return 'host not found (DNS)';
    default:
      return undefined;
  }
}

function describeStatus(status: number | undefined): string {
  switch (status) {
    case 401:
      return 'authentication required or credentials rejected';
    case 403:
      return 'access denied';
    case 404:
      return 'not found';
    case 429:
      return 'too many requests';
    default:
      return '';
  }
}

/** Parses `Retry-After` (delta seconds or HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const trimmed = v.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Parses a distribution error body; tolerates non-JSON bodies (proxies, load balancers). */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  if (!text) return [];
  try {
    const json = JSON.parse(text) as { errors?: unknown; error?: unknown; message?: unknown };
    if (Array.isArray(json.errors)) {
      return json.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({
          code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
          ...(typeof e.message === 'string' ? { message: e.message } : {}),
          ...(e.detail !== undefined ? { detail: e.detail } : {}),
        }));
    }
    // Token servers and some proxies answer {"error": "...", "message": "..."}.
    if (typeof json.error === 'string' || typeof json.message === 'string') {
      const message = typeof json.message === 'string' ? json.message : String(json.error);
      return [{ code: 'UNKNOWN', message }];
    }
  } catch {
    // not JSON: fall through
  }
  const firstLine = text.split('\n', 1)[0]!.trim().slice(0, 200);
  return firstLine ? [{ code: 'UNKNOWN', message: firstLine }] : [];
}
