// Where a registry client may connect (issue 10, item 3), below the API: the rules on resolved
// addresses (a name resolving to a link-local address is refused like the address), and the
// dispatcher that applies them at connect time, the allow-list to the registry's own requests and
// the link-local (and on AWS loopback) refusal to every redirect it follows.
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { after, before, describe, it } from 'node:test';
import { addressRule, guardedLookup, HostPatterns, urlRefusal, type AddressRule } from '../shared/registry/address-policy.js';
import { DEFAULT_RETRY_POLICY, HostStates } from '../shared/registry/backoff.js';
import { createDispatcher, send } from '../shared/registry/http.js';
import { connectPolicyOf } from '../shared/rules/registry-endpoint.js';
import { registrySchema } from '../shared/rules/config-schema.js';
import { ConfigError, parseConfig } from '../shared/rules/load-config.js';
import { startListener, type RecordingListener } from './support/listener.js';

/** A resolver answering from a table, as dns.lookup({all: true}) would. */
const fakeDns =
  (table: Record<string, string[]>) =>
  (hostname: string, _o: unknown, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
    const a = table[hostname];
    if (!a) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    cb(null, a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };

const lookupWith = (rule: AddressRule, table: Record<string, string[]>, all = false) =>
  new Promise<{ err: (Error & { code?: string }) | null; result: unknown }>((resolve) =>
    guardedLookup(rule, fakeDns(table))(Object.keys(table)[0]!, { all }, (err, address, family) => resolve({ err, result: all ? address : [address, family] })),
  );

describe('address rules on resolved addresses', () => {
  it('a name resolving to a link-local address is refused (URL_REFUSED), even among allowed ones; others pass as resolved', async () => {
    const rule = addressRule();
    for (const addresses of [['169.254.169.254'], ['10.0.0.5', '169.254.169.254'], ['fe80::1'], ['::ffff:169.254.169.254'], ['fd00:ec2::254']]) {
      const { err } = await lookupWith(rule, { 'metadata.evil.example': addresses });
      assert.equal(err?.code, 'URL_REFUSED', addresses.join(','));
      assert.match(err!.message, /link-local/);
    }
    assert.deepEqual((await lookupWith(rule, { 'harbor.lan': ['10.0.0.5'] })).result, ['10.0.0.5', 4], 'private ranges stay allowed');
    assert.deepEqual((await lookupWith(rule, { 'harbor.lan': ['10.0.0.5', '10.0.0.6'] }, true)).result, [
      { address: '10.0.0.5', family: 4 },
      { address: '10.0.0.6', family: 4 },
    ]);
    assert.equal((await lookupWith(rule, { 'loop.example': ['127.0.0.1'] })).err, null, 'loopback allowed off AWS');
    assert.equal((await lookupWith(addressRule({ refuseLoopback: true }), { 'loop.example': ['127.0.0.1'] })).err?.code, 'URL_REFUSED');
    assert.equal((await lookupWith(addressRule({ refuseLoopback: true }), { 'loop.example': ['::1'] })).err?.code, 'URL_REFUSED');
    assert.equal((await lookupWith(addressRule({ refuseLoopback: true }), { 'zero.example': ['0.0.0.0'] })).err?.code, 'URL_REFUSED', '0.0.0.0 reaches this host');
  });

  it('api.allowed_registry_hosts: a glob matches the name, a CIDR the resolved address; link-local stays refused either way', async () => {
    const rule = addressRule({ allowedHosts: new HostPatterns(['*.corp.example', '10.1.0.0/16', '192.0.2.7']) });
    assert.equal((await lookupWith(rule, { 'harbor.corp.example': ['203.0.113.9'] })).err, null);
    assert.equal((await lookupWith(rule, { 'HARBOR.Corp.Example': ['203.0.113.9'] })).err, null, 'names are case-insensitive');
    assert.equal((await lookupWith(rule, { 'anything.example': ['10.1.2.3'] })).err, null);
    assert.equal((await lookupWith(rule, { 'anything.example': ['192.0.2.7'] })).err, null);
    const outside = await lookupWith(rule, { 'anything.example': ['10.2.0.1'] });
    assert.equal(outside.err?.code, 'URL_REFUSED');
    assert.match(outside.err!.message, /anything\.example \(10\.2\.0\.1\) is not in api\.allowed_registry_hosts/);
    assert.equal((await lookupWith(rule, { 'meta.corp.example': ['169.254.169.254'] })).err?.code, 'URL_REFUSED');
    assert.equal(await urlRefusal(new URL('http://10.1.9.9:5000'), rule), undefined);
    assert.match((await urlRefusal(new URL('http://[fe80::1]:5000'), rule))!, /link-local/);
    assert.match((await urlRefusal(new URL('http://x.example'), rule, fakeDns({ 'x.example': ['10.9.9.9'] })))!, /not in api\.allowed_registry_hosts/);
    assert.equal(await urlRefusal(new URL('http://unknown.example'), rule, fakeDns({})), undefined, 'a name that does not resolve is checked when connecting');
  });

  it('the config file: api.allowed_registry_hosts takes host globs and CIDRs only, api.secret_prefix ends in "/"', () => {
    const problems = (api: string) => {
      try {
        parseConfig(`api:\n${api}`, 'c.yaml');
        return [];
      } catch (err) {
        return (err as ConfigError).issues;
      }
    };
    assert.deepEqual(problems('  allowed_registry_hosts: ["*.corp.example", "10.0.0.0/8", "fd00::/8", "registry-?.lan"]\n'), []);
    assert.match(problems('  allowed_registry_hosts: ["10.0.0.0/33"]\n')[0]!, /^api\.allowed_registry_hosts\[0\]: is not a valid CIDR/);
    assert.match(problems('  allowed_registry_hosts: ["host name"]\n')[0]!, /^api\.allowed_registry_hosts\[0\]: must be a host name glob/);
    assert.match(problems('  allowed_registry_hosts: []\n')[0]!, /^api\.allowed_registry_hosts: lists at least one/);
    assert.match(problems('  secret_prefix: harbor-replicator/api\n')[0]!, /^api\.secret_prefix: must be a Secrets Manager name prefix ending in "\/"/);
    assert.match(problems('  allowed_secrets: ["bad name"]\n')[0]!, /^api\.allowed_secrets\[0\]: must be a Secrets Manager secret name or ARN/);
  });
});

describe('the dispatcher applies the rules at connect time', () => {
  let registry: RecordingListener;
  let storage: RecordingListener;
  let local: RecordingListener;
  const redirectTo = (target: () => string) => (_req: unknown, res: import('node:http').ServerResponse) => void res.writeHead(307, { location: target() }).end();
  let target = '';

  before(async () => {
    storage = await startListener((_req, res) => void res.writeHead(200).end('blob-bytes'), '127.0.0.3');
    local = await startListener();
    registry = await startListener(redirectTo(() => target), '127.0.0.2');
  });
  after(async () => {
    await Promise.all([registry?.stop(), storage?.stop(), local?.stop()]);
  });

  /** A blob GET as the registry client sends it: redirects followed by `send`, credentials for `origin` only. */
  const get = async (dispatcher: ReturnType<typeof createDispatcher>, origin: string, credentials?: string) => {
    try {
      const auth = credentials ? { origin: new URL(origin).origin, header: async () => credentials, unauthorized: async () => false } : undefined;
      const r = await send(
        { dispatcher, hosts: new HostStates({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 }) },
        { method: 'GET', url: new URL('/v2/app/blobs/sha256:abc', origin), expect: [200], followRedirects: true, ...(auth ? { auth } : {}) },
      );
      return { status: r.status, body: await r.body.text() };
    } catch (err) {
      return { code: (err as { code?: string }).code, message: (err as Error).message };
    }
  };
  const apiRegistry = (refuseLoopback: boolean) =>
    createDispatcher({ verify: true }, connectPolicyOf(registrySchema.parse({ name: 'r', type: 'docker-registry', url: registry.url }), 'api', { refuseLoopback, allowedApiHosts: ['127.0.0.2/32'] }));

  it('an API registry within the allow-list redirects a blob to object storage outside it: followed, without credentials', async () => {
    target = `${storage.url}/bucket/blob?X-Amz-Signature=abc`;
    const r = await get(apiRegistry(false), registry.url, 'Basic cm9ib3Q6cHc=');
    assert.deepEqual(r, { status: 200, body: 'blob-bytes' });
    assert.equal(storage.requests.at(-1)?.headers.authorization, undefined, 'no Authorization off the registry origin');
  });

  it('its own requests outside the allow-list are refused before connecting', async () => {
    const before = local.connections;
    const r = await get(apiRegistry(false), local.url);
    assert.equal(r.code, 'URL_REFUSED');
    assert.equal(local.connections, before);
  });

  it('a redirect to a link-local address is refused, and on AWS one to loopback, by address or by name; no connection made', async () => {
    target = 'http://169.254.169.254/latest/meta-data/iam/security-credentials/';
    assert.equal((await get(apiRegistry(false), registry.url)).code, 'URL_REFUSED');
    target = `http://localhost:${local.port}/2018-06-01/runtime/invocation/next`;
    const before = local.connections;
    assert.equal((await get(apiRegistry(true), registry.url)).code, 'URL_REFUSED');
    assert.equal(local.connections, before, 'localhost resolved to 127.0.0.1 and was refused');
  });

  it("a config-file registry: its own host is the operator's choice, even on loopback; its redirects get the same refusals", async () => {
    const file = createDispatcher({ verify: true }, connectPolicyOf(registrySchema.parse({ name: 'f', type: 'docker-registry', url: local.url }), 'file', { refuseLoopback: true }));
    assert.equal((await get(file, local.url)).status, 200);
    const viaRedirect = createDispatcher({ verify: true }, connectPolicyOf(registrySchema.parse({ name: 'f', type: 'docker-registry', url: registry.url }), 'file', { refuseLoopback: true }));
    target = 'http://169.254.169.254/';
    assert.equal((await get(viaRedirect, registry.url)).code, 'URL_REFUSED');
    target = `${local.url}/x`;
    assert.equal((await get(viaRedirect, registry.url)).code, 'URL_REFUSED');
  });
});
