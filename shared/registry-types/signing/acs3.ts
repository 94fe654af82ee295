import { canonicalQuery, hmacSha256, rfc3986, sha256Hex } from './encoding.js';

/** One Alibaba Cloud OpenAPI call (RPC or ROA style: V3 signs both the same way). */
export interface Acs3Call {
  accessKeyId: string;
  accessKeySecret: string;
  method: string;
  /** The request URL: its host, path and query are signed as sent. */
  url: URL;
  action: string;
  version: string;
  /** `yyyy-MM-ddTHH:mm:ssZ` (UTC). */
  date: string;
  /** A new random value per call (replay protection). */
  nonce: string;
  /** The body as sent ('' for none). */
  body: string;
  contentType?: string | undefined;
}

/**
 * The headers of an Alibaba Cloud request signed with ACS3-HMAC-SHA256 ("request syntax and
 * signature method V3", which Alibaba documents for RPC and ROA APIs alike): a canonical request
 * of the method, the encoded path, the sorted query, `host`, `content-type` and every `x-acs-*`
 * header, and the payload's SHA-256, signed with HMAC-SHA256 under the AccessKey secret.
 * Harbor's ali-acr adapter signs with the SDK's older V1 scheme; V3 is what Alibaba recommends
 * in its place and what their SDKs now send.
 */
export function acs3Headers(c: Acs3Call): Record<string, string> {
  const payloadHash = sha256Hex(c.body);
  const headers: Record<string, string> = {
    host: c.url.host,
    'x-acs-action': c.action,
    'x-acs-content-sha256': payloadHash,
    'x-acs-date': c.date,
    'x-acs-signature-nonce': c.nonce,
    'x-acs-version': c.version,
    ...(c.contentType ? { 'content-type': c.contentType } : {}),
  };
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim()}\n`).join('');
  const signedHeaders = names.join(';');
  const path = c.url.pathname.split('/').map((s) => rfc3986(decodeURIComponent(s))).join('/') || '/';
  const canonicalRequest = [c.method, path, canonicalQuery(c.url.searchParams), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const signature = hmacSha256(c.accessKeySecret, `ACS3-HMAC-SHA256\n${sha256Hex(canonicalRequest)}`).toString('hex');
  const { host: _host, ...sent } = headers; // the Host header is the connection's own
  return { ...sent, authorization: `ACS3-HMAC-SHA256 Credential=${c.accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}` };
}
