import { createHash, createHmac } from 'node:crypto';
import type { Seen } from './provider-fake.js';

/**
 * The cloud stand-ins' side of request signing, written apart from the engine's signers
 * (shared/registry-types/signing/) and from each provider's documentation: a stand-in rebuilds
 * the canonical request from what it received (method, path, query, headers, body) and checks the
 * signature, so a request whose signed headers, host, query or body differ from what reached the
 * wire is refused like the provider would refuse it. Each returns why it refuses, or undefined.
 */

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const mac = (k: string | Buffer, s: string) => createHmac('sha256', k).update(s, 'utf8').digest();
const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function sortedQuery(path: string): string {
  const q = new URL(path, 'http://x').searchParams;
  return [...q.entries()]
    .map(([k, v]): [string, string] => [enc(k), enc(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerOf(seen: Seen, name: string): string {
  const v = seen.headers[name];
  return ((Array.isArray(v) ? v[0] : v) ?? '').trim();
}

/** Tencent Cloud TC3-HMAC-SHA256, for `keys` (SecretId -> SecretKey). */
export function checkTc3(seen: Seen, keys: Map<string, string>, now = Date.now()): string | undefined {
  const m = /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([^/]+)\/tc3_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(seen.authorization ?? '');
  if (!m) return 'AuthFailure.SignatureFailure';
  const [, id, date, service, signed, signature] = m;
  const key = keys.get(id!);
  if (!key) return 'AuthFailure.SecretIdNotFound';
  const ts = Number(headerOf(seen, 'x-tc-timestamp'));
  if (Math.abs(now / 1000 - ts) > 300) return 'AuthFailure.SignatureExpire';
  if (new Date(ts * 1000).toISOString().slice(0, 10) !== date) return 'AuthFailure.SignatureFailure';
  const names = signed!.split(';');
  const canonical = [seen.method, '/', '', names.map((n) => `${n}:${headerOf(seen, n).toLowerCase()}\n`).join(''), signed, sha(seen.body)].join('\n');
  const sts = ['TC3-HMAC-SHA256', String(ts), `${date}/${service}/tc3_request`, sha(canonical)].join('\n');
  const k = mac(mac(mac(`TC3${key}`, date!), service!), 'tc3_request');
  return mac(k, sts).toString('hex') === signature ? undefined : 'AuthFailure.SignatureFailure';
}

/** Alibaba Cloud ACS3-HMAC-SHA256 (V3), for `keys` (AccessKey ID -> secret); nonces may not repeat. */
export function checkAcs3(seen: Seen, keys: Map<string, string>, nonces: Set<string>, now = Date.now()): string | undefined {
  const m = /^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$/.exec(seen.authorization ?? '');
  if (!m) return 'IncompleteSignature';
  const [, id, signed, signature] = m;
  const secret = keys.get(id!);
  if (!secret) return 'InvalidAccessKeyId.NotFound';
  if (Math.abs(now - Date.parse(headerOf(seen, 'x-acs-date'))) > 15 * 60_000) return 'SignatureExpired';
  if (headerOf(seen, 'x-acs-content-sha256') !== sha(seen.body)) return 'SignatureDoesNotMatch';
  const nonce = headerOf(seen, 'x-acs-signature-nonce');
  if (!nonce || nonces.has(nonce)) return 'SignatureNonceUsed';
  const names = signed!.split(';');
  if (!names.includes('host') || !names.includes('x-acs-action')) return 'IncompleteSignature';
  const path = new URL(seen.path, 'http://x').pathname;
  const canonical = [seen.method, path, sortedQuery(seen.path), names.map((n) => `${n}:${headerOf(seen, n)}\n`).join(''), signed, headerOf(seen, 'x-acs-content-sha256')].join('\n');
  if (mac(secret, `ACS3-HMAC-SHA256\n${sha(canonical)}`).toString('hex') !== signature) return 'SignatureDoesNotMatch';
  nonces.add(nonce);
  return undefined;
}

/** Volcengine HMAC-SHA256, for `keys` (AccessKey ID -> secret). */
export function checkVolc(seen: Seen, keys: Map<string, string>, now = Date.now()): string | undefined {
  const m = /^HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(seen.authorization ?? '');
  if (!m) return 'InvalidAuthorization';
  const [, id, day, region, service, signed, signature] = m;
  const secret = keys.get(id!);
  if (!secret) return 'InvalidAccessKey';
  const xDate = headerOf(seen, 'x-date');
  const when = Date.parse(xDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!Number.isFinite(when) || Math.abs(now - when) > 15 * 60_000 || !xDate.startsWith(day!)) return 'SignatureExpired';
  if (headerOf(seen, 'x-content-sha256') !== sha(seen.body)) return 'SignatureDoesNotMatch';
  const names = signed!.split(';');
  const path = new URL(seen.path, 'http://x').pathname;
  const canonical = [seen.method, path, sortedQuery(seen.path), names.map((n) => `${n}:${headerOf(seen, n)}\n`).join(''), signed, sha(seen.body)].join('\n');
  const k = mac(mac(mac(mac(secret, day!), region!), service!), 'request');
  const sts = ['HMAC-SHA256', xDate, `${day}/${region}/${service}/request`, sha(canonical)].join('\n');
  return mac(k, sts).toString('hex') === signature ? undefined : 'SignatureDoesNotMatch';
}
