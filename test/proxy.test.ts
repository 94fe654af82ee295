// Corporate egress proxies: HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and lowercase) as curl and
// skopeo read them, a registry's own proxy_url, the AWS functions' aws.proxy with a credential
// from a secret. The registries are reached through names only the test proxy resolves, so a
// copy that works went through it. Registry credentials never reach the proxy.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addressRule } from '../shared/registry/address-policy.js';
import { createDispatcher } from '../shared/registry/http.js';
import { NoProxy, isProxied, proxyFromEnv } from '../shared/registry/proxy.js';
import { RegistryClient } from '../shared/registry/client.js';
import { parseApiRegistryBody } from '../shared/rules/api-registry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { proxyOfAwsConfig } from '../shared/rules/proxy-config.js';
import { apiRegistryUrlProblem, RegistryClients } from '../shared/rules/registry-endpoint.js';
import { deploymentOf } from '../infra/config.js';
import { runCli } from './support/cli.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { startForwardProxy, type ForwardProxy } from './support/forward-proxy.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { caSignedCert } from './support/token-issuer.js';

/** Names nothing on the machine resolves but the test proxy. */
const SRC = 'hq.proxied.test';
const TLS = 'branch.proxied.test';
const PLAIN = 'edge.proxied.test';

/** The environment without any proxy variable, plus `extra`. */
const proxyEnv = (extra: Record<string, string> = {}): Record<string, string | undefined> => ({
  HTTPS_PROXY: undefined,
  https_proxy: undefined,
  HTTP_PROXY: undefined,
  http_proxy: undefined,
  NO_PROXY: undefined,
  no_proxy: undefined,
  ...extra,
});

describe('forward proxies', () => {
  let src: TestRegistry;
  let tls: TestRegistry;
  let plain: TestRegistry;
  let proxy: ForwardProxy;
  let authProxy: ForwardProxy;
  let image: Layout;
  let ca: string;
  let dir: string;

  before(async () => {
    const cert = await caSignedCert([TLS]);
    ca = cert.ca;
    const htpasswd = await htpasswdFile('robot$branch+ci', 's3cret');
    [src, tls, plain, proxy, authProxy] = await Promise.all([
      startRegistry(),
      startRegistry({ tls: { certificate: cert.certificate, key: cert.key }, htpasswd }),
      startRegistry({ htpasswd }),
      startForwardProxy({ hosts: [SRC, TLS, PLAIN] }),
      startForwardProxy({ hosts: [SRC, TLS, PLAIN], credential: { username: 'egress', password: 'pr0xy:pass' } }),
    ]);
    image = await imageLayout([{ size: 30_000 }, { size: 5_000 }]);
    await pushLayout(image, `${src.host}/library/app:1`);
    dir = await mkdtemp(join(tmpdir(), 'hr-proxy-'));
  });
  after(async () => {
    await Promise.all([src?.stop(), tls?.stop(), plain?.stop(), proxy?.stop(), authProxy?.stop()]);
  });

  /** A config copying library/app from hq to `dest` (a registry line), into `ns`. */
  const config = async (ns: string, hq: string, dest: string) => {
    const file = join(dir, `${ns}.yaml`);
    await writeFile(
      file,
      `registries:
  - {name: hq, type: docker-registry, url: "${hq}"}
  - ${dest}
rules:
  - {name: r, src_registry: hq, dest_registry: dest, dest_namespace: ${ns}, filters: [{type: name, value: library/app}]}
`,
    );
    return file;
  };
  const credential = `credential: {username: "robot$branch+ci", password: {env: DEST_PASSWORD}}`;
  const since = (p: ForwardProxy) => {
    const start = p.seen.length;
    return () => p.seen.slice(start);
  };

  it('HTTP_PROXY and HTTPS_PROXY carry every request: absolute URIs for http, CONNECT for https, to names only the proxy resolves', async () => {
    const file = await config('viaenv', `http://${SRC}:${src.port}`, `{name: dest, type: docker-registry, url: "https://${TLS}:${tls.port}", ca: {file: "${ca}"}, ${credential}}`);
    const seen = since(proxy);
    const r = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-env')], {
      env: proxyEnv({ HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await manifestDigest(tls.url, 'viaenv/app', '1', basic('robot$branch+ci', 's3cret'), ca), image.top.digest);

    const requests = seen();
    const forwards = requests.filter((s) => s.kind === 'forward');
    const tunnels = requests.filter((s) => s.kind === 'connect');
    // The source's requests were absolute URIs, manifests and blobs among them.
    assert.ok(forwards.length > 0 && forwards.every((s) => s.target.startsWith(`http://${SRC}:${src.port}/v2/`)), JSON.stringify(forwards.map((s) => s.target)));
    assert.ok(forwards.some((s) => s.target.includes(`/blobs/${image.blobs[0]!.digest}`)));
    // The destination's went through tunnels to its name; the proxy saw no credential at all.
    assert.ok(tunnels.length > 0 && tunnels.every((s) => s.target === `${TLS}:${tls.port}`), JSON.stringify(tunnels.map((s) => s.target)));
    assert.deepEqual(requests.filter((s) => s.headers.authorization !== undefined), []);

    // `copy` as well (skopeo's flags: plain http allowed for the source).
    const copied = await runCli(
      ['copy', `docker://${SRC}:${src.port}/library/app:1`, `docker://${TLS}:${tls.port}/copied/app`, '--src-tls-verify=false', '--dest-ca-file', ca, '--dest-creds', 'robot$branch+ci:s3cret'],
      { env: proxyEnv({ HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url }) },
    );
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(await manifestDigest(tls.url, 'copied/app', '1', basic('robot$branch+ci', 's3cret'), ca), image.top.digest);

    // Without the proxy the names do not resolve: the run fails and says which host.
    const direct = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-direct'), '--json'], { env: proxyEnv({ DEST_PASSWORD: 's3cret' }) });
    assert.equal(direct.code, 1);
    assert.match(JSON.parse(direct.stdout).statusText as string, new RegExp(`${SRC.replace(/\./g, '\\.')}|${TLS.replace(/\./g, '\\.')}`));
  });

  it('lowercase variables and NO_PROXY: hosts in no_proxy are reached directly, the rest through the proxy', async () => {
    const file = await config('noproxy', `http://127.0.0.1:${src.port}`, `{name: dest, type: docker-registry, url: "https://${TLS}:${tls.port}", ca: {file: "${ca}"}, ${credential}}`);
    const seen = since(proxy);
    const r = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-noproxy')], {
      env: proxyEnv({ http_proxy: proxy.url, https_proxy: proxy.url, no_proxy: 'localhost, 127.0.0.1', DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await manifestDigest(tls.url, 'noproxy/app', '1', basic('robot$branch+ci', 's3cret'), ca), image.top.digest);
    const requests = seen();
    assert.deepEqual(requests.filter((s) => s.target.includes('127.0.0.1')), [], 'the source in no_proxy went direct');
    assert.ok(requests.some((s) => s.kind === 'connect' && s.target === `${TLS}:${tls.port}`));
  });

  it("a plain-http registry's credentials are tunnelled: the proxy never reads them", async () => {
    const file = await config('plain', `http://${SRC}:${src.port}`, `{name: dest, type: docker-registry, url: "http://${PLAIN}:${plain.port}", ${credential}}`);
    const seen = since(proxy);
    const r = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-plain')], {
      env: proxyEnv({ HTTP_PROXY: proxy.url, DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await manifestDigest(plain.url, 'plain/app', '1', basic('robot$branch+ci', 's3cret')), image.top.digest);
    const requests = seen();
    assert.deepEqual(requests.filter((s) => s.kind === 'forward' && s.target.includes(PLAIN)), [], 'no absolute-URI request to the registry with credentials');
    assert.ok(requests.some((s) => s.kind === 'connect' && s.target === `${PLAIN}:${plain.port}`));
    assert.deepEqual(requests.filter((s) => s.headers.authorization !== undefined), []);
  });

  it("a registry's proxy_url overrides the environment's proxy; the API cannot set one", async () => {
    const file = await config(
      'override',
      `http://127.0.0.1:${src.port}`,
      `{name: dest, type: docker-registry, url: "https://${TLS}:${tls.port}", ca: {file: "${ca}"}, proxy_url: "${proxy.url}", ${credential}}`,
    );
    const seen = since(proxy);
    // The environment's proxy is a closed port: only the source (in NO_PROXY) and proxy_url work.
    const r = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-override')], {
      env: proxyEnv({ HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1', DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok(seen().some((s) => s.kind === 'connect' && s.target === `${TLS}:${tls.port}`));

    const refused = parseApiRegistryBody({ name: 'x', type: 'docker-registry', url: 'https://r.example', proxy_url: proxy.url });
    assert.ok('problem' in refused);
    assert.match(refused.problem, /^proxy_url: .*config file/);
    // The config file's proxy_url takes no credentials (they would be a literal secret).
    assert.throws(
      () => parseConfig(`registries: [{name: a, type: docker-registry, url: "https://a", proxy_url: "http://u:p@proxy:3128"}]`, 'c.yaml'),
      /registries\[0\]\.proxy_url/,
    );
  });

  it("the proxy's own credential: from the proxy URL (as curl), or aws.proxy's secret; it goes to the proxy only", async () => {
    const file = await config('proxyauth', `http://${SRC}:${src.port}`, `{name: dest, type: docker-registry, url: "https://${TLS}:${tls.port}", ca: {file: "${ca}"}, ${credential}}`);
    const withAuth = authProxy.url.replace('http://', `http://egress:${encodeURIComponent('pr0xy:pass')}@`);
    const seen = since(authProxy);
    const ok = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-auth')], {
      env: proxyEnv({ HTTP_PROXY: withAuth, HTTPS_PROXY: withAuth, DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const expected = `Basic ${Buffer.from('egress:pr0xy:pass').toString('base64')}`;
    assert.ok(seen().length > 0 && seen().every((s) => s.headers['proxy-authorization'] === expected && s.status !== 407));
    assert.doesNotMatch(ok.stdout + ok.stderr, /pr0xy/, 'the proxy password is never printed');

    // Without it the proxy answers 407 and the run fails naming that.
    const denied = await runCli(['run', 'r', '--config', file, '--data-dir', join(dir, 'state-noauth'), '--json'], {
      env: proxyEnv({ HTTP_PROXY: authProxy.url, HTTPS_PROXY: authProxy.url, DEST_PASSWORD: 's3cret' }),
    });
    assert.equal(denied.code, 1);
    assert.match(JSON.parse(denied.stdout).statusText as string, /407|proxy/i);

    // aws.proxy (the Lambda functions'): the password from its secret, as Proxy-Authorization.
    const loaded = parseConfig(
      `aws: {proxy: {https_proxy: "${authProxy.url}", http_proxy: "${authProxy.url}", no_proxy: [localhost], credential: {username: egress, password: {secret: corp/proxy}}}}`,
      'c.yaml',
    );
    const reads: string[] = [];
    const secrets = { store: { get: async (name: string) => (reads.push(name), 'pr0xy:pass') } };
    const clients = new RegistryClients({ secrets, network: { refuseLoopback: true }, proxy: () => proxyOfAwsConfig(loaded.config.aws.proxy, secrets) });
    const reg = { name: 'edge', type: 'docker-registry', url: `http://${SRC}:${src.port}`, insecure: false } as Parameters<RegistryClients['get']>[0];
    const client = await clients.get(reg);
    const before = authProxy.seen.length;
    const page = await client.tagsPage('library/app');
    assert.deepEqual(page.items, ['1']);
    assert.deepEqual(reads, ['corp/proxy']);
    assert.ok(authProxy.seen.slice(before).every((s) => s.headers['proxy-authorization'] === expected));
  });

  it('with a proxy, the connection rules apply to the host name: the proxy resolves it, a literal refused address stays refused', async () => {
    const policy = { direct: addressRule({ refuseLoopback: true }), redirects: addressRule({ refuseLoopback: true }) };
    const settings = { httpProxy: proxy.url, httpsProxy: proxy.url, tunnelHttp: false };
    const client = (host: string) => new RegistryClient({ host, scheme: 'http', dispatcher: createDispatcher({ verify: true }, policy, settings) });
    // A name: its address is the proxy's business (here loopback, which the Lambda rules refuse locally).
    assert.deepEqual((await client(`${SRC}:${src.port}`).tagsPage('library/app')).items, ['1']);
    // A literal loopback or link-local address is refused before anything is sent.
    const seen = since(proxy);
    await assert.rejects(client(`127.0.0.1:${src.port}`).tagsPage('library/app'), /127\.0\.0\.1 is a loopback address, refused on AWS/);
    await assert.rejects(client('169.254.169.254').tagsPage('library/app'), /link-local/);
    assert.deepEqual(seen(), []);

    // The API's check of a new registry's URL: a proxied name is checked as a name.
    const network = { refuseLoopback: true, allowedApiHosts: ['*.proxied.test'], proxy: { httpsProxy: proxy.url } };
    const api = (url: string) => apiRegistryUrlProblem({ name: 'x', type: 'docker-registry', url, insecure: false } as Parameters<typeof apiRegistryUrlProblem>[0], network);
    assert.equal(await api(`https://${TLS}`), undefined);
    assert.match((await api('https://registry.other.example')) ?? '', /not in api\.allowed_registry_hosts/);
    assert.match((await api('https://127.0.0.1')) ?? '', /loopback/);
  });

  it('NO_PROXY reads as curl: suffixes, leading dots, ports, addresses, *', () => {
    const np = new NoProxy('example.com, .corp.internal,*.svc:8443 10.0.0.1 [::1]');
    const m = (u: string) => np.matches(new URL(u));
    assert.equal(m('https://example.com/v2/'), true);
    assert.equal(m('https://registry.example.com'), true);
    assert.equal(m('https://badexample.com'), false);
    assert.equal(m('https://harbor.corp.internal'), true);
    assert.equal(m('https://cluster.svc:8443'), true);
    assert.equal(m('https://cluster.svc'), false);
    assert.equal(m('http://10.0.0.1:5000'), true);
    assert.equal(m('http://10.0.0.10'), false);
    assert.equal(m('http://[::1]:5000'), true);
    assert.equal(new NoProxy('*').matches(new URL('https://any.where')), true);
    assert.equal(new NoProxy(undefined).matches(new URL('https://any.where')), false);

    assert.equal(proxyFromEnv({}), undefined);
    assert.deepEqual(proxyFromEnv({ HTTPS_PROXY: 'http://a:3128', https_proxy: 'http://b:3128', NO_PROXY: 'x' }), { httpProxy: undefined, httpsProxy: 'http://b:3128', noProxy: 'x' });
    assert.equal(isProxied({ httpsProxy: 'http://p' }, new URL('http://plain')), false, 'no HTTP_PROXY: plain http goes direct');
    assert.equal(isProxied({ httpsProxy: 'http://p', noProxy: 'corp' }, new URL('https://h.corp')), false);
    assert.equal(isProxied({ httpsProxy: 'http://p' }, new URL('https://h.corp')), true);
  });

  it('aws.proxy: validated at synth, its credential only as a secret (granted to the functions)', () => {
    const problem = (yaml: string) => {
      try {
        parseConfig(yaml, 'c.yaml');
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.match(problem('aws: {proxy: {no_proxy: x}}'), /aws\.proxy: needs https_proxy or http_proxy/);
    assert.match(problem('aws: {proxy: {https_proxy: "socks5://p:1080"}}'), /aws\.proxy\.https_proxy: must be an http:\/\/ or https:\/\/ URL/);
    assert.match(problem('aws: {proxy: {https_proxy: "http://p:3128", port: 1}}'), /aws\.proxy/);

    const deploy = (password: string) =>
      deploymentOf(parseConfig(`aws: {proxy: {https_proxy: "http://proxy.corp:3128", credential: {username: egress, password: ${password}}}}`, 'c.yaml'));
    assert.throws(() => deploy('{env: PROXY_PASSWORD}'), /aws\.proxy\.credential\.password: must be \{secret: NAME_OR_ARN\} on AWS/);
    const d = deploy('{secret: corp/proxy}');
    assert.ok(JSON.stringify(d).includes('corp/proxy'), 'the secret is granted to the functions');
  });
});
