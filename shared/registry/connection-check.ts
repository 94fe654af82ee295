import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';

/**
 * Harbor's "Test Connection" as an answer that tells the status, never the content: the
 * registry's HTTP status (null when no answer came) and a code from a fixed vocabulary, so a
 * caller pointing a registry at some internal service learns nothing of what it said.
 */
export interface ConnectionCheck {
  ok: boolean;
  status: number | null;
  code: string | null;
}

/** The distribution spec's error codes (plus what registries send for throttling): shown as sent. */
const REGISTRY_CODES = new Set([
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
]);

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME', 'ENODATA']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code.startsWith('UNABLE_TO_') ||
    code.includes('SELF_SIGNED') ||
    code === 'EPROTO' ||
    code === 'HOSTNAME_MISMATCH'
  );
}

/** Our code for a connection-level failure (undici's and Node's codes), from the error or its causes. */
export function networkCode(err: unknown): string {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (!code) continue;
    if (code === 'URL_REFUSED') return 'URL_REFUSED';
    if (DNS_CODES.has(code)) return 'DNS';
    if (TIMEOUT_CODES.has(code)) return 'TIMEOUT';
    if (isTlsCode(code)) return 'TLS';
    if (CONNECT_CODES.has(code)) return 'CONNECT';
  }
  return 'CONNECT';
}

/** What a failed check reports: status and code only. */
export function checkFailure(err: unknown, timedOut: boolean): ConnectionCheck {
  if (timedOut) return { ok: false, status: null, code: 'TIMEOUT' };
  if (err instanceof RegistryError) {
    if (err.status === undefined) return { ok: false, status: null, code: networkCode(err.cause) };
    const sent = err.codes.find((c) => REGISTRY_CODES.has(c));
    const byStatus = err.status === 401 ? 'UNAUTHORIZED' : err.status === 403 ? 'DENIED' : err.status === 429 ? 'TOOMANYREQUESTS' : `HTTP_${err.status}`;
    return { ok: false, status: err.status, code: sent ?? byStatus };
  }
  // Our own failures (a refused address, an auth challenge we cannot use, a secret that cannot
  // be read): codes are ours, fixed strings, upper snake case.
  if (err instanceof ReplicatorError && /^[A-Z][A-Z0-9_]{0,40}$/.test(err.code)) return { ok: false, status: null, code: err.code };
  return { ok: false, status: null, code: 'ERROR' };
}

/**
 * Reaches the registry (`GET /v2/`) and checks the credentials (an authenticated `GET /v2/`,
 * through the token service for token auth), within `timeoutMs` whatever the registry or its
 * token service does (the requests are aborted; a step that ignores the signal is abandoned).
 */
export async function checkConnection(client: () => Promise<RegistryClient>, timeoutMs: number): Promise<ConnectionCheck> {
  const controller = new AbortController();
  const signal = controller.signal;
  const work = (async () => {
    const c = await client();
    // Once: Test Connection answers what it found, it does not wait out retries.
    await c.ping(signal, { once: true });
    await c.checkCredentials(signal, { once: true });
  })();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error('connection check timed out'));
      resolve('timeout');
    }, timeoutMs);
  });
  try {
    const first = await Promise.race([work.then(() => 'done' as const), expired]);
    if (first === 'timeout') {
      work.catch(() => {}); // abandoned: its outcome no longer matters
      return { ok: false, status: null, code: 'TIMEOUT' };
    }
    return { ok: true, status: 200, code: null };
  } catch (err) {
    return checkFailure(err, signal.aborted);
  } finally {
    clearTimeout(timer);
  }
}
