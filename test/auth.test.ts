// Auth against real docker-registry instances: Basic (htpasswd) and the Bearer token flow with
// a JWT issuer, token caching per scope, one refresh on 401, mount scopes, wrong passwords
// failing fast without a retry storm.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '../shared/copy/image-copy.js';
import type { RetryPolicy } from '../shared/registry/backoff.js';
import { RegistryClient, type RegistryOptions } from '../shared/registry/client.js';
import { RegistryError } from '../shared/registry/errors.js';
import { parseReference } from '../shared/registry/reference.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startTokenIssuer, type TokenIssuer } from './support/token-issuer.js';

const FAST: RetryPolicy = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200, maxRetryAfterMs: 5_000 };

describe('auth against real registries', () => {
  let plain: TestRegistry;
  let basicReg: TestRegistry;
  let basicProxy: FaultProxy;
  let issuer: TokenIssuer;
  let tokenReg: TestRegistry;
  let image: Layout;

  before(async () => {
    const htpasswd = await htpasswdFile('alice', 's3cret:with:colons');
    issuer = await startTokenIssuer({ bob: 'b0b-pass' });
    [plain, basicReg, tokenReg] = await Promise.all([
      startRegistry(),
      startRegistry({ htpasswd }),
      startRegistry({ token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootcertbundle: issuer.rootcertbundle } }),
    ]);
    basicProxy = await startFaultProxy(basicReg.host);
    image = await imageLayout([{ size: 200_000 }]);
    await pushLayout(image, `${plain.host}/library/app:1.0`);
  });
  after(async () => {
    await Promise.all([plain?.stop(), basicReg?.stop(), tokenReg?.stop(), basicProxy?.stop(), issuer?.stop()]);
  });

  const client = (host: string, extra: Partial<RegistryOptions> = {}) => new RegistryClient({ host, scheme: 'http', retry: FAST, ...extra });
  const from = (host: string, ref: string, extra: Partial<RegistryOptions> = {}) => ({ client: client(host, extra), ref: parseReference(`${host}/${ref}`) });

  it('Basic: copies into and out of an htpasswd registry', async () => {
    const creds = { username: 'alice', password: 's3cret:with:colons' };
    await copyImage(from(plain.host, 'library/app:1.0'), from(basicReg.host, 'team/app:1.0', { credentials: creds }));
    assert.equal(await manifestDigest(basicReg.url, 'team/app', '1.0', basic('alice', 's3cret:with:colons')), image.top.digest);
    await copyImage(from(basicReg.host, 'team/app:1.0', { credentials: creds }), from(plain.host, 'back/app:1.0'));
    assert.equal(await manifestDigest(plain.url, 'back/app', '1.0'), image.top.digest);
  });

  it('Basic: a wrong password fails at once with a clear error and no retry storm', async () => {
    const before = basicProxy.log.length;
    await assert.rejects(
      copyImage(from(plain.host, 'library/app:1.0'), from(basicProxy.host, 'team/app:1.0', { credentials: { username: 'alice', password: 'wrong' } })),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'UNAUTHORIZED');
        assert.ok(!err.message.includes('wrong'), 'the password is not in the message');
        return true;
      },
    );
    const requests = basicProxy.log.length - before;
    assert.ok(requests <= 2, `${requests} requests reached the registry`);
  });

  it('Bearer: exchanges Basic credentials for tokens, caches them per scope', async () => {
    const requestsBefore = issuer.requests.length;
    const dst = from(tokenReg.host, 'team/app:1.0', { credentials: { username: 'bob', password: 'b0b-pass' } });
    const result = await copyImage(from(plain.host, 'library/app:1.0'), dst);
    assert.equal(result.status, 'copied');
    const asked = issuer.requests.slice(requestsBefore);
    assert.ok(asked.every((r) => r.granted && r.user === 'bob'));
    // HEAD (pull) and uploads/manifest (pull,push): two scope sets, one token each, reused by every blob.
    assert.deepEqual([...new Set(asked.map((r) => r.scopes.join(' ')))].sort(), [
      'repository:team/app:pull',
      'repository:team/app:pull,push',
    ]);
    assert.equal(asked.length, 2, `token requests: ${JSON.stringify(asked)}`);

    const again = await copyImage(from(plain.host, 'library/app:1.0'), dst);
    assert.equal(again.status, 'in_sync');
    assert.equal(issuer.requests.length - requestsBefore, 2, 'the second copy reuses the cached pull token');
  });

  it('Bearer: a mount asks pull scope on the from repository too', async () => {
    const creds = { credentials: { username: 'bob', password: 'b0b-pass' } };
    const requestsBefore = issuer.requests.length;
    const result = await copyImage(from(tokenReg.host, 'team/app:1.0', creds), from(tokenReg.host, 'other/app:1.0', creds));
    assert.equal(result.blobs.mounted, 2);
    const scopes = issuer.requests.slice(requestsBefore).map((r) => r.scopes);
    assert.ok(
      scopes.some((s) => s.includes('repository:other/app:pull,push') && s.includes('repository:team/app:pull')),
      JSON.stringify(scopes),
    );
  });

  it('Bearer: a token without the needed access gets one refresh after the 401, then succeeds', async () => {
    const stingy = await startTokenIssuer({ bob: 'b0b-pass' }, { emptyFirst: 1 });
    const reg = await startRegistry({ token: { realm: stingy.realm, service: stingy.service, issuer: stingy.issuer, rootcertbundle: stingy.rootcertbundle } });
    try {
      const result = await copyImage(from(plain.host, 'library/app:1.0'), from(reg.host, 'team/app:1.0', { credentials: { username: 'bob', password: 'b0b-pass' } }));
      assert.equal(result.status, 'copied');
      const pulls = stingy.requests.filter((r) => r.scopes.join(' ') === 'repository:team/app:pull');
      assert.equal(pulls.length, 2, 'first token was empty, one refresh');
    } finally {
      await Promise.all([reg.stop(), stingy.stop()]);
    }
  });

  it('Bearer: a token is reused until it expires, then a new one is fetched', async () => {
    const shortLived = await startTokenIssuer({ bob: 'b0b-pass' }, { expiresIn: 1 });
    const reg = await startRegistry({ token: { realm: shortLived.realm, service: shortLived.service, issuer: shortLived.issuer, rootcertbundle: shortLived.rootcertbundle } });
    try {
      const client = new RegistryClient({ host: reg.host, scheme: 'http', credentials: { username: 'bob', password: 'b0b-pass' } });
      await client.headManifest('team/app', '1.0');
      await client.headManifest('team/app', '1.0');
      assert.equal(shortLived.requests.length, 1, 'cached while valid');
      await new Promise((r) => setTimeout(r, 1100));
      await client.headManifest('team/app', '1.0');
      assert.equal(shortLived.requests.length, 2, 'fetched again after expires_in');
    } finally {
      await Promise.all([reg.stop(), shortLived.stop()]);
    }
  });

  it('Bearer: a wrong password fails fast with one token request and a clear message', async () => {
    const requestsBefore = issuer.requests.length;
    await assert.rejects(
      copyImage(from(plain.host, 'library/app:1.0'), from(tokenReg.host, 'team/app:1.0', { credentials: { username: 'bob', password: 'nope' } })),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.status, 401);
        assert.match(err.message, /token service of 127\.0\.0\.1:\d+ rejected user "bob"/);
        assert.ok(!err.message.includes('nope'));
        return true;
      },
    );
    assert.equal(issuer.requests.length - requestsBefore, 1);
  });

  it('anonymous access to a token registry is refused with the registry named', async () => {
    await assert.rejects(copyImage(from(tokenReg.host, 'team/app:1.0'), from(plain.host, 'anon/app:1.0')), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.status, 401);
      assert.match(err.message, /anonymous access/);
      return true;
    });
  });
});
