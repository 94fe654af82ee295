import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A self-signed certificate and its key, made with openssl (Node cannot create certificates). */
export interface CertPair {
  dir: string;
  certificate: string;
  key: string;
}

/** Creates a self-signed certificate for 127.0.0.1 (usable for TLS and token signing). */
export async function selfSignedCert(cn = '127.0.0.1'): Promise<CertPair> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-cert-'));
  const certificate = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', certificate,
  ]);
  return { dir, certificate, key };
}

/** A test CA, and a server certificate for 127.0.0.1 / localhost (and `names`) that it signed. */
export async function caSignedCert(names: string[] = []): Promise<CertPair & { ca: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-ca-'));
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const key = join(dir, 'key.pem');
  const csr = join(dir, 'server.csr');
  const certificate = join(dir, 'cert.pem');
  const ext = join(dir, 'ext.cnf');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=harbor-replicator test CA', '-keyout', caKey, '-out', ca]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', csr]);
  const dns = ['localhost', ...names].map((n) => `DNS:${n}`).join(',');
  await writeFile(ext, `subjectAltName=IP:127.0.0.1,${dns}\nbasicConstraints=CA:FALSE\n`);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', certificate]);
  return { dir, certificate, key, ca };
}

/** A token service for docker-registry's `auth: token` (the distribution token spec). */
export interface TokenIssuer {
  /** The realm URL to configure in the registry. */
  realm: string;
  service: string;
  issuer: string;
  /** The certificate bundle the registry trusts (`rootcertbundle`). */
  rootcertbundle: string;
  /** Token requests received, with the scopes asked and whether credentials were valid. */
  requests: Array<{ user: string | undefined; scopes: string[]; granted: boolean }>;
  /** Every token issued (a test checks none of them shows up where it must not). */
  tokens: string[];
  stop(): Promise<void>;
}

/**
 * Starts a token issuer on 127.0.0.1: Basic credentials in, RS256 JWT out, signed with a
 * self-signed certificate carried in the `x5c` header, granting the scopes asked for.
 */
export async function startTokenIssuer(
  users: Record<string, string>,
  opts: { expiresIn?: number; /** The first N tokens carry no access (an insufficient_scope 401 follows). */ emptyFirst?: number } = {},
): Promise<TokenIssuer> {
  let emptyLeft = opts.emptyFirst ?? 0;
  const cert = await selfSignedCert('token-issuer');
  const keyPem = await readFile(cert.key, 'utf8');
  const certPem = await readFile(cert.certificate, 'utf8');
  const key = createPrivateKey(keyPem);
  const x5c = new X509Certificate(certPem).raw.toString('base64');
  const service = 'test-registry';
  const issuer = 'test-issuer';
  const requests: TokenIssuer['requests'] = [];
  const tokens: string[] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const auth = req.headers.authorization;
    let user: string | undefined;
    let granted = false;
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      user = u;
      granted = u !== undefined && users[u] === p.join(':');
    }
    requests.push({ user, scopes, granted });
    if (!granted) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = opts.expiresIn ?? 300;
    const empty = emptyLeft > 0;
    if (empty) emptyLeft -= 1;
    const access = empty ? [] : scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop() ?? '';
      return { type, name: rest.join(':'), actions: actions.split(',').filter(Boolean) };
    });
    const header = { alg: 'RS256', typ: 'JWT', x5c: [x5c] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signingInput = `${b64(header)}.${b64(claims)}`;
    const signature = sign('sha256', Buffer.from(signingInput), key).toString('base64url');
    const token = `${signingInput}.${signature}`;
    tokens.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootcertbundle: cert.certificate,
    requests,
    tokens,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
