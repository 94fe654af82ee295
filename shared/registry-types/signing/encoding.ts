import { createHash, createHmac } from 'node:crypto';

/** Hex SHA-256 of a UTF-8 string (the payload and canonical-request hashes of every cloud scheme here). */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** HMAC-SHA256 of `message` under `key`. */
export function hmacSha256(key: string | Buffer, message: string): Buffer {
  return createHmac('sha256', key).update(message, 'utf8').digest();
}

/**
 * RFC 3986 percent-encoding: everything but `A-Za-z0-9-_.~`, hex upper case. `encodeURIComponent`
 * leaves `!'()*` as they are; the cloud signing schemes do not.
 */
export function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A canonical query string: pairs sorted by name (then value), both encoded with rfc3986, joined with `&`. */
export function canonicalQuery(params: URLSearchParams): string {
  const pairs = [...params.entries()].map(([k, v]) => [rfc3986(k), rfc3986(v)] as const);
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}
