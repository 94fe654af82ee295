import { canonicalQuery, hmacSha256, sha256Hex } from './encoding.js';

/** One Volcengine OpenAPI call (`?Action=...&Version=...`, a JSON body). */
export interface VolcCall {
  accessKeyId: string;
  secretAccessKey: string;
  /** The product: `cr`. */
  service: string;
  region: string;
  method: string;
  /** The request URL: host, path and query are signed as sent. */
  url: URL;
  /** `yyyyMMddTHHmmssZ` (UTC). */
  date: string;
  body: string;
  contentType: string;
}

/**
 * The headers of a Volcengine OpenAPI request signed with HMAC-SHA256 (Volcengine's
 * "signature method", which volc-sdk-golang's `Sign4` implements and Harbor's volcengine-cr adapter
 * uses through the SDK): a canonical request of the method, path, sorted query, `content-type`,
 * `host`, `x-content-sha256`, `x-date` and the payload's SHA-256, a scope
 * `date/region/service/request`, a key derived from the secret through the date, region and
 * service.
 */
export function volcHeaders(c: VolcCall): Record<string, string> {
  const payloadHash = sha256Hex(c.body);
  const headers: Record<string, string> = { 'content-type': c.contentType, host: c.url.host, 'x-content-sha256': payloadHash, 'x-date': c.date };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    c.method,
    c.url.pathname || '/',
    canonicalQuery(c.url.searchParams),
    names.map((n) => `${n}:${headers[n]!.trim()}\n`).join(''),
    signedHeaders,
    payloadHash,
  ].join('\n');
  const day = c.date.slice(0, 8);
  const scope = `${day}/${c.region}/${c.service}/request`;
  const stringToSign = ['HMAC-SHA256', c.date, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmacSha256(hmacSha256(hmacSha256(hmacSha256(c.secretAccessKey, day), c.region), c.service), 'request');
  const signature = hmacSha256(key, stringToSign).toString('hex');
  const { host: _host, ...sent } = headers;
  return { ...sent, authorization: `HMAC-SHA256 Credential=${c.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}` };
}
