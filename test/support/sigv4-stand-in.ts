// A stand-in for API Gateway with IAM authorization: every request must carry a valid SigV4
// signature (service execute-api), checked here with node:crypto alone (not the signer the
// console uses), then it is answered by `answer` (a real serve behind it, in the tests).
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SigV4Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** One request the stand-in received: what was signed and whether the signature held. */
export interface SignedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** undefined: the signature is valid; else why not. */
  refused: string | undefined;
  region?: string;
  service?: string;
}

export interface SigV4StandIn {
  url: string;
  requests: SignedRequest[];
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
/** RFC 3986 encoding, as SigV4 wants it. */
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Why the request's signature is not valid for `keys` (undefined when it is). */
export function checkSigV4(req: { method: string; url: string; headers: IncomingMessage['headers'] }, body: Buffer, keys: SigV4Keys, expect: { region: string; service: string }, now = Date.now()): string | undefined {
  const auth = req.headers.authorization;
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth ?? '');
  if (!m) return `no SigV4 Authorization header (${auth === undefined ? 'none' : 'another scheme'})`;
  const [, keyId, day, region, service, signedHeaders, signature] = m as unknown as string[];
  if (keyId !== keys.accessKeyId) return `unknown access key ${keyId}`;
  if (region !== expect.region) return `signed for region ${region}, not ${expect.region}`;
  if (service !== expect.service) return `signed for service ${service}, not ${expect.service}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(day!)) return 'x-amz-date missing or not the credential scope day';
  const at = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(now - at) > 5 * 60_000) return 'signed more than 5 minutes away from now';
  const names = signedHeaders!.split(';');
  for (const required of ['host', 'x-amz-date', ...(keys.sessionToken ? ['x-amz-security-token'] : [])]) if (!names.includes(required)) return `${required} is not signed`;
  if (keys.sessionToken && req.headers['x-amz-security-token'] !== keys.sessionToken) return 'wrong x-amz-security-token';
  const [rawPath = '/', rawQuery = ''] = req.url.split('?', 2) as [string, string?];
  // Not S3: each path segment encoded once more.
  const canonicalUri = rawPath.split('/').map(encode).join('/');
  const canonicalQuery = rawQuery
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const [k = '', v = ''] = p.split('=', 2);
      const d = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      return [encode(d(k)), encode(d(v))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = names.map((n) => {
    const v = req.headers[n];
    if (v === undefined) return undefined;
    return `${n}:${(Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ')}\n`;
  });
  if (canonicalHeaders.includes(undefined)) return 'a signed header is missing';
  const canonical = [req.method, canonicalUri, canonicalQuery, canonicalHeaders.join(''), signedHeaders, sha256(body)].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${keys.secretAccessKey}`, day!), region!), service!), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature ? undefined : 'signature does not match';
}

/**
 * Starts the stand-in on 127.0.0.1. A request whose signature fails gets API Gateway's 403
 * `{"message":"Forbidden"}`; a valid one goes to `answer`.
 */
export async function startSigV4StandIn(
  keys: SigV4Keys,
  expect: { region: string; service: string },
  answer: (req: SignedRequest) => Promise<{ status: number; headers: Record<string, string>; body: Buffer | string }>,
): Promise<SigV4StandIn> {
  const requests: SignedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const refused = checkSigV4({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, body, keys, expect);
      const m = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\//.exec(req.headers.authorization ?? '');
      const seen: SignedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, refused, ...(m ? { region: m[1], service: m[2] } : {}) };
      requests.push(seen);
      if (refused) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Forbidden' }));
        return;
      }
      answer(seen).then(
        (a) => res.writeHead(a.status, a.headers).end(a.body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
