// Every Harbor registry type through `serve`'s management API, as an API caller gives them
// (Harbor's literal credential form, `{type: basic, access_key, access_secret}`): each type is
// accepted; what only the config file may hold (`api_token`) is refused; a provider API address
// is held to the registry URL rules; and "Test Connection" (ping) works where a credential is
// exchanged or decoded first: Quay's JSON credential, a Tencent SecretId/SecretKey.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLog } from '../shared/observability/telemetry.js';
import { REGISTRY_TYPES } from '../shared/rules/config-schema.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { startServer, type RunningServer, type ServerOptions } from '../functions/serve/server.js';
import { checkTc3 } from './support/cloud-signatures.js';
import { json as reply, startApiFake, startProviderFake, type ApiFake, type ProviderFake } from './support/provider-fake.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const TOKEN = 'types-api-t0ken';

describe('serve API: every registry type', () => {
  let upstream: TestRegistry;
  let quay: ProviderFake;
  let tcr: ProviderFake;
  let tcrApi: ApiFake;
  let server: RunningServer;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined, text };
  };
  const post = (body: unknown) => api('/registries', { method: 'POST', body: JSON.stringify(body) });

  before(async () => {
    upstream = await startRegistry({ relativeUrls: true });
    quay = await startProviderFake({
      upstream,
      users: new Map([['acme+robot', 'QUAYROBOTTOKEN']]),
      realmPath: '/v2/auth',
      refuseToken: (scopes) => (scopes.some((s) => s.startsWith('registry:catalog')) ? { status: 400, body: {} } : undefined),
    });
    tcr = await startProviderFake({ upstream, users: new Map(), realmPath: '/service/token' });
    const keys = new Map([['AKIDapiExample0001', 'TcrApiSecretKey']]);
    tcrApi = await startApiFake((_req, res, _url, seen) => {
      const refused = checkTc3(seen, keys);
      if (refused) return reply(res, 200, { Response: { Error: { Code: refused, Message: 'signature' }, RequestId: 'x' } });
      switch (seen.headers['x-tc-action']) {
        case 'DescribeInstances':
          return reply(res, 200, { Response: { TotalCount: 1, Registries: [{ RegistryId: 'tcr-api1', RegionName: 'ap-tokyo' }], RequestId: 'x' } });
        case 'CreateInstanceToken':
          tcr.users.set('200099', 'tcr-api-temp');
          return reply(res, 200, { Response: { Username: '200099', Token: 'tcr-api-temp', ExpTime: Date.now() + 3600_000, RequestId: 'x' } });
      }
      return false;
    });
    process.env.HR_TYPES_API_TOKEN = TOKEN;
    process.env.HR_TYPES_ENC_KEY = randomBytes(32).toString('base64');
    const dir = await mkdtemp(join(tmpdir(), 'hr-types-api-'));
    server = await startServer({
      config: parseConfig(`registries: []\nrules: []\napi:\n  token: {env: HR_TYPES_API_TOKEN}\n  encryption_key: {env: HR_TYPES_ENC_KEY}\n`, 'types-api.yaml'),
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'state'),
      log: silentLog,
      pingTimeoutMs: 5000,
    } as ServerOptions);
  });
  after(async () => {
    await server?.close();
    await Promise.all([quay?.stop(), tcr?.stop(), tcrApi?.stop(), upstream?.stop()]);
  });

  it("accepts each of Harbor's registry type names, with Harbor's literal credential", async () => {
    assert.equal(REGISTRY_TYPES.length, 16);
    for (const [i, type] of REGISTRY_TYPES.entries()) {
      const r = await post({ name: `t${i}`, type, url: `http://${upstream.host}`, credential: { type: 'basic', access_key: 'AKIDx', access_secret: 'secret' } });
      assert.equal(r.status, 201, `${type}: ${r.text}`);
      assert.equal(r.body.type, type);
    }
    const openapi = await (await fetch(`${server.url}/api/v1/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    assert.deepEqual((openapi as any).components.schemas.RegistryInput.properties.type.enum, [...REGISTRY_TYPES]);
  });

  it('refuses api_token (a reference would reach the server), and an api_url at a forbidden address', async () => {
    const token = await post({ name: 'q1', type: 'quay', url: quay.url, api_token: { env: 'AWS_SECRET_ACCESS_KEY' } });
    assert.equal(token.status, 400);
    assert.match(token.body.error.message, /^api_token: not allowed through the API; for Quay, give Harbor's JSON credential/);
    const metadata = await post({ name: 'h1', type: 'docker-hub', api_url: 'http://169.254.169.254/latest/' });
    assert.equal(metadata.status, 400, metadata.text);
    assert.equal(metadata.body.error.code, 'URL_REFUSED');
  });

  it("ping decodes Quay's JSON credential (Harbor's form) and authenticates the robot", async () => {
    const secret = JSON.stringify({ account_name: 'acme+robot', docker_cli_password: 'QUAYROBOTTOKEN', oauth2_token: 'unused-here' });
    assert.equal((await post({ name: 'quay', type: 'quay', url: quay.url, credential: { type: 'basic', access_key: 'json_file', access_secret: secret } })).status, 201);
    assert.deepEqual((await api('/registries/quay/ping', { method: 'POST' })).body, { ok: true, status: 200, code: null });
    assert.ok(quay.tokenRequests.some((t) => t.user === 'acme+robot' && t.granted));
    const got = await api('/registries/quay');
    assert.ok(!got.text.includes('QUAYROBOTTOKEN'), 'the JSON secret is never shown');
  });

  it('ping exchanges a Tencent SecretId/SecretKey for an instance token first', async () => {
    const body = { name: 'tcr', type: 'tencent-tcr', url: tcr.url, api_url: tcrApi.url, credential: { type: 'basic', access_key: 'AKIDapiExample0001', access_secret: 'TcrApiSecretKey' } };
    assert.equal((await post(body)).status, 201);
    assert.deepEqual((await api('/registries/tcr/ping', { method: 'POST' })).body, { ok: true, status: 200, code: null });
    assert.deepEqual(
      tcrApi.requests.map((q) => q.headers['x-tc-action']),
      ['DescribeInstances', 'CreateInstanceToken'],
    );
    assert.ok(tcr.tokenRequests.some((t) => t.user === '200099' && t.granted));
  });
});
