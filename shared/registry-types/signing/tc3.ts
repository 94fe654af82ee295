import { hmacSha256, sha256Hex } from './encoding.js';

/** One call of a Tencent Cloud API 3.0 action (POST, JSON body). */
export interface Tc3Call {
  secretId: string;
  secretKey: string;
  /** The product: `tcr`. */
  service: string;
  /** The Host header as sent (`tcr.tencentcloudapi.com`). */
  host: string;
  action: string;
  version: string;
  region?: string | undefined;
  /** Unix seconds; the credential scope's date is its UTC date. */
  timestamp: number;
  /** The JSON body, exactly as sent. */
  payload: string;
}

const CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The headers of a Tencent Cloud API 3.0 request signed with TC3-HMAC-SHA256 (Tencent's
 * "Signature v3": a canonical request of POST, `/`, no query, `content-type` and `host`, the
 * payload's SHA-256; a key derived from "TC3" + SecretKey, the date, the service, "tc3_request").
 * What Harbor's tencent-tcr adapter gets from tencentcloud-sdk-go, without the SDK.
 */
export function tc3Headers(c: Tc3Call): Record<string, string> {
  const date = new Date(c.timestamp * 1000).toISOString().slice(0, 10);
  const signedHeaders = 'content-type;host';
  const canonicalRequest = ['POST', '/', '', `content-type:${CONTENT_TYPE}\nhost:${c.host}\n`, signedHeaders, sha256Hex(c.payload)].join('\n');
  const scope = `${date}/${c.service}/tc3_request`;
  const stringToSign = ['TC3-HMAC-SHA256', String(c.timestamp), scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmacSha256(hmacSha256(hmacSha256(`TC3${c.secretKey}`, date), c.service), 'tc3_request');
  const signature = hmacSha256(key, stringToSign).toString('hex');
  return {
    authorization: `TC3-HMAC-SHA256 Credential=${c.secretId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    'content-type': CONTENT_TYPE,
    'x-tc-action': c.action,
    'x-tc-version': c.version,
    'x-tc-timestamp': String(c.timestamp),
    ...(c.region ? { 'x-tc-region': c.region } : {}),
  };
}
