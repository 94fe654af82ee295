import { ReplicatorError } from '../errors.js';

/** One entry of the distribution spec's error envelope `{"errors": [{code, message, detail}]}`. */
export interface RegistryErrorEntry {
  /** The registry's code (`MANIFEST_UNKNOWN`), or UNKNOWN when it sent none that looks like one. */
  code: string;
  /** At most 200 escaped characters of the registry's message (see `remoteText`). */
  message?: string;
}

/*
 * The one retry vocabulary. A failure is transient when the same request may succeed later: a
 * connection refused or reset (a dropped body included), a timeout, a DNS failure marked
 * temporary, HTTP 408, 429 or 5xx except 501, or the registry codes TOOMANYREQUESTS and
 * UNAVAILABLE. Everything else is final. Every retry layer asks `isTransient` (see the README's
 * table of retry layers), so they cannot disagree.
 */

/** HTTP statuses worth another attempt (after a backoff). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}
/** Registry error codes that say "try again later" whatever the status. */
const TRANSIENT_CODES = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE']);
/**
 * Connection-level failures (undici and Node codes) after which the same request may succeed:
 * refused, reset or cut short, timed out, DNS "try again". Anything else from the socket layer
 * (TLS verification, a name that does not exist, an unreachable network) is final.
 */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
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
  // A registry chooses its Link and Location URLs: one line of an error, not a flood.
  const text = u.toString();
  return text.length > MAX_URL_SHOWN ? `${text.slice(0, MAX_URL_SHOWN)}...` : text;
}

/** The most of a URL an error or a log line shows. */
const MAX_URL_SHOWN = 512;

/** Every failure talking to a registry: HTTP status or network error, with the registry's codes. */
export class RegistryError extends ReplicatorError {
  override name = 'RegistryError';
  /** HTTP status, or undefined for a connection-level failure. */
  readonly status: number | undefined;
  readonly method: string;
  /** The request URL with credentials and signatures removed. */
  readonly url: string;
  /** The registry's error entries: codes, and messages escaped and cut (see parseErrorBody). */
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
      init.retryable ?? ((init.status !== undefined && isTransientStatus(init.status)) || codes.some((c) => TRANSIENT_CODES.has(c)));
    const what = init.status === undefined ? 'failed' : `answered ${init.status}`;
    const reason =
      init.message ??
      (errors.length > 0
        ? // The codes, and one message: at most 200 characters of the registry's own text.
          `${[...new Set(codes)].join(', ')}${errors[0]!.message ? `: ${errors[0]!.message}` : ''}`
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
    const retryable = code !== undefined && TRANSIENT_NETWORK_CODES.has(code);
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

/**
 * Whether a failure may pass if the same thing is done again (see the vocabulary above): a
 * registry's answer or a connection failure by its status, codes and network code; any other
 * error of ours (a digest mismatch, an invalid name, a limit, a stop) is final.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof RegistryError) return err.retryable;
  // An engine error is final unless it says otherwise (a lock held elsewhere, referrers that
  // failed transiently): a `retryable` it sets itself.
  if (err instanceof ReplicatorError) return (err as { retryable?: unknown }).retryable === true;
  const c = err as { code?: string; cause?: { code?: string } } | null;
  const code = c?.code ?? c?.cause?.code;
  return code !== undefined && TRANSIENT_NETWORK_CODES.has(code);
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

/** Characters a registry's message may not carry into our errors and logs as is. */
// C0 and C1 controls, DEL, Unicode line/paragraph separators and bidi overrides: each could
// start a forged log line or hide text on a terminal; lone surrogates break JSON logs.
const UNSAFE_CHAR = /^[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"\\]$/;

/** The most of a registry's own message that reaches an error or a log line. */
export const REMOTE_TEXT_LIMIT = 200;

/**
 * A registry's text made safe to print: quotes, backslashes and control characters escaped as
 * JSON does (`\n`, `\u001b`), cut to at most `limit` characters of the escaped text (never in the
 * middle of an escape).
 */
export function remoteText(text: string, limit = REMOTE_TEXT_LIMIT): string {
  let out = '';
  for (const ch of text) {
    const piece = UNSAFE_CHAR.test(ch) ? escapeChar(ch) : ch;
    if (out.length + piece.length > limit) return out;
    out += piece;
  }
  return out;
}

function escapeChar(ch: string): string {
  switch (ch) {
    case '"':
      return '\\"';
    case '\\':
      return '\\\\';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
}

/** Error codes as the distribution spec writes them; anything else is shown as UNKNOWN. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * Reads a distribution error body (`{"errors": [{code, message, detail}]}`): the code when it
 * looks like one, and at most 200 escaped characters of the message. Nothing else of a body is
 * kept: not `detail`, not a token server's `{error, message}`, not a proxy's HTML page. A
 * registry is not trusted, and its text ends up in task errors and logs; without an envelope the
 * status alone names the failure.
 */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  if (!text) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return [];
  }
  const errors = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .slice(0, 10)
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => {
      const message = typeof e.message === 'string' ? remoteText(e.message) : '';
      return {
        code: typeof e.code === 'string' && ERROR_CODE.test(e.code) ? e.code : 'UNKNOWN',
        ...(message ? { message } : {}),
      };
    });
}
