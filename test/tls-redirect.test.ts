// TLS verified by default, a CA bundle, skip-verify and plain-HTTP fallback only when asked;
// blob redirects to another host followed without our credentials.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '../shared/copy/image-copy.js';
import { RegistryClient, type RegistryOptions } from '../shared/registry/client.js';
import { RegistryError } from '../shared/registry/errors.js';
import { parseReference } from '../shared/registry/reference.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { selfSignedCert, type CertPair } from './support/token-issuer.js';

const FAST = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 1000 };

describe('TLS and redirects', () => {
  let cert: CertPair;
  let tlsReg: TestRegistry;
  let plain: TestRegistry;
  let image: Layout;

  before(async () => {
    cert = await selfSignedCert();
    [tlsReg, plain] = await Promise.all([startRegistry({ tls: { certificate: cert.certificate, key: cert.key } }), startRegistry()]);
    image = await imageLayout([{ size: 300_000 }]);
    await pushLayout(image, `${plain.host}/library/app:1.0`);
  });
  after(async () => {
    await Promise.all([tlsReg?.stop(), plain?.stop()]);
  });

  const src = () => ({ client: new RegistryClient({ host: plain.host, scheme: 'http' }), ref: parseReference(`${plain.host}/library/app:1.0`) });
  const to = (reg: TestRegistry, repo: string, opts: Partial<RegistryOptions>) => ({
    client: new RegistryClient({ host: reg.host, retry: FAST, ...opts }),
    ref: parseReference(`${reg.host}/${repo}:1.0`),
  });

  it('refuses a self-signed certificate by default, with a clear reason', async () => {
    await assert.rejects(copyImage(src(), to(tlsReg, 'verified/app', {})), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /TLS certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
      return true;
    });
  });

  it('trusts the certificate given as a CA bundle', async () => {
    const result = await copyImage(src(), to(tlsReg, 'ca/app', { caFile: cert.certificate }));
    assert.equal(result.status, 'copied');
  });

  it('skips verification only when asked (tls-verify=false)', async () => {
    const result = await copyImage(src(), to(tlsReg, 'insecure/app', { tlsVerify: false, scheme: 'auto' }));
    assert.equal(result.status, 'copied');
  });

  it('falls back to plain HTTP only with scheme auto, and says why HTTPS failed otherwise', async () => {
    await assert.rejects(copyImage(src(), to(plain, 'strict/app', {})), /does not speak HTTPS/);
    const result = await copyImage(src(), to(plain, 'auto/app', { tlsVerify: false, scheme: 'auto' }));
    assert.equal(result.status, 'copied');
    assert.equal(await manifestDigest(plain.url, 'auto/app', '1.0'), image.top.digest);
  });
});

describe('blob redirects to object storage', () => {
  let reg: TestRegistry;
  let front: FaultProxy;
  let storage: FaultProxy;
  let dst: TestRegistry;
  let image: Layout;
  const auth = basic('carol', 'storage-test-pw');

  before(async () => {
    const htpasswd = await htpasswdFile('carol', 'storage-test-pw');
    [reg, dst] = await Promise.all([startRegistry({ htpasswd }), startRegistry()]);
    image = await imageLayout([{ size: 500_000 }, { size: 1000 }]);
    await pushLayout(image, `${reg.host}/library/app:1.0`, { creds: 'carol:storage-test-pw' });
    // "Object storage": another origin that reads the registry with its own credentials.
    storage = await startFaultProxy(reg.host, { addHeaders: { authorization: auth } });
    front = await startFaultProxy(reg.host);
    front.add({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      fault: { kind: 'redirect', location: (path) => `http://localhost:${storage.port}${path}` },
      times: 100,
    });
  });
  after(async () => {
    await Promise.all([reg?.stop(), dst?.stop(), front?.stop(), storage?.stop()]);
  });

  it('follows a 307 to another host and never sends it our Authorization', async () => {
    const result = await copyImage(
      {
        client: new RegistryClient({ host: front.host, scheme: 'http', credentials: { username: 'carol', password: 'storage-test-pw' } }),
        ref: parseReference(`${front.host}/library/app:1.0`),
      },
      { client: new RegistryClient({ host: dst.host, scheme: 'http' }), ref: parseReference(`${dst.host}/mirror/app:1.0`) },
    );
    assert.equal(result.status, 'copied');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), image.top.digest);

    const redirected = front.log.filter((e) => e.status === 307);
    assert.equal(redirected.length, image.blobs.length, 'every blob GET was redirected');
    assert.ok(redirected.every((e) => e.headers.authorization === auth), 'the registry itself got our credentials');
    const fetched = storage.log.filter((e) => e.method === 'GET' && /\/blobs\//.test(e.path));
    assert.equal(fetched.length, image.blobs.length);
    assert.ok(
      fetched.every((e) => e.headers.authorization === undefined),
      'no Authorization header reached the storage host',
    );
  });
});
