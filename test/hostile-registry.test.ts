// Issue 10, hostile registries, reproduced from outside: a proxy in front of a real
// docker-registry lies the way a hostile or broken registry would (tags that are paths, Links
// and upload Locations to another host, pages that never end, fan-out indexes, forged error
// text), and a recorder on another port stands for the attacker's host. Each test fails on the
// code before the trust-boundaries work for the reason in its name; every lie is bounded in
// count (see test/support/hostile-registry.ts), so that code ends too.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Execution, Task } from '../shared/executions/model.js';
import { RegistryClient } from '../shared/registry/client.js';
import { runCli, type CliResult } from './support/cli.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import {
  fanOutIndex,
  served,
  startHostileHarbor,
  startHostileRegistry,
  startRecorder,
  type HostileRegistry,
  type Recorder,
} from './support/hostile-registry.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const USER = 'erin';
const PASSWORD = 'hostile-test-pw-42';
const INSECURE = ['--src-tls-verify=false', '--dest-tls-verify=false'];
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('hostile registries', () => {
  let plain: TestRegistry;
  let dst: TestRegistry;
  let locked: TestRegistry;
  let recorder: Recorder;
  let app: Layout;
  let dir: string;
  const proxies: HostileRegistry[] = [];
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    const htpasswd = await htpasswdFile(USER, PASSWORD);
    [plain, dst, locked, recorder] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ htpasswd }), startRecorder()]);
    app = await imageLayout([{ size: 200_000 }]);
    await Promise.all([
      ...['library/app:1.0', 'library/a:1', 'library/b:1', 'library/fan:child', 'library/wide:base', 'library/deep:base'].map((ref) =>
        pushLayout(app, `${plain.host}/${ref}`),
      ),
      pushLayout(app, `${locked.host}/library/app:1.0`, { creds: `${USER}:${PASSWORD}` }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'hr-hostile-'));
  });
  after(async () => {
    await Promise.all([...proxies.map((p) => p.stop()), ...stops.map((s) => s()), recorder?.stop()]);
    await Promise.all([plain?.stop(), dst?.stop(), locked?.stop()]);
  });

  const proxy = async (upstream: TestRegistry): Promise<HostileRegistry> => {
    const p = await startHostileRegistry(upstream.host);
    proxies.push(p);
    return p;
  };

  /** The CLI with no ambient credentials; the locked registry's password in LOCKED_PW. */
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, {
      env: { DOCKER_CONFIG: dir, HARBOR_REPLICATOR_SRC_CREDS: undefined, HARBOR_REPLICATOR_DEST_CREDS: undefined, LOCKED_PW: PASSWORD, HARBOR_REPLICATOR_CONFIG: undefined },
      timeoutMs: 90_000,
    });

  let runs = 0;
  /** Writes a config, runs `rule` with its own data dir; the execution and its tasks as stored. */
  const runRule = async (config: string, rule: string) => {
    const n = ++runs;
    const file = join(dir, `replicator-${n}.yaml`);
    const dataDir = join(dir, `state-${n}`);
    await writeFile(file, config);
    const r = await cli(['run', rule, '--config', file, '--data-dir', dataDir]);
    const id = /^execution (\d+) /m.exec(r.stdout)?.[1];
    assert.ok(id, `no execution in the output: ${r.stdout}\n${r.stderr}`);
    const execution = JSON.parse((await cli(['executions', 'show', id, '--json', '--data-dir', dataDir])).stdout) as Execution;
    const tasks = JSON.parse((await cli(['tasks', id, '--json', '--data-dir', dataDir])).stdout) as Task[];
    return { r, execution, tasks };
  };

  const registry = (name: string, host: string, extra = '') => `  - {name: ${name}, type: docker-registry, url: "http://${host}"${extra}}\n`;
  const lockedCredential = `, credential: {username: ${USER}, password: {env: LOCKED_PW}}`;

  it('tags that are paths or queries (INVALID_NAME): Error tasks, and no request with them reaches either registry', async () => {
    const src = await proxy(plain);
    const to = await proxy(dst);
    src.rules.tags = { 'library/app': ['1.0', '../../../../api/v2.0/projects', 'good?x=1'] };
    const { r, execution, tasks } = await runRule(
      `registries:\n${registry('src', src.host)}${registry('dst', to.host)}rules:\n  - {name: r, src_registry: src, dest_registry: dst, filters: [{type: name, value: library/app}]}\n`,
      'r',
    );
    assert.equal(r.code, 1, r.stderr);
    assert.equal(execution.status, 'Failed');
    const failed = tasks.filter((t) => t.status === 'Error');
    assert.deepEqual(failed.map((t) => t.error?.code), ['INVALID_NAME', 'INVALID_NAME'], JSON.stringify(tasks));
    assert.equal(tasks.filter((t) => t.status === 'Success').length, 1);
    const injected = /api|good|\.\.|%2e|x=1|%3f/i;
    assert.deepEqual(to.log.filter((e) => injected.test(e.path)), [], 'the destination never saw an injected name');
    assert.deepEqual(src.log.filter((e) => injected.test(e.path)), [], 'nor did the source');

    // Defence in depth: the client itself refuses such names, before any request (not even a ping).
    const client = new RegistryClient({ host: to.host, scheme: 'http', credentials: { username: USER, password: PASSWORD } });
    const seen = to.log.length;
    const bad = '../../../../api/v2.0/projects';
    const manifest = (await new RegistryClient({ host: plain.host, scheme: 'http' }).getManifest('library/app', '1.0'));
    for (const attempt of [
      () => client.headManifest('library/app', bad),
      () => client.headManifest('library/app', 'good?x=1'),
      () => client.putManifest('library/app', bad, manifest),
      () => client.putManifest('../../api/v2.0', 'projects', manifest),
      () => client.getBlob('library/app', `sha256:${bad}`),
      () => client.mountBlob('library/app', manifest.digest, 'a/../../b'),
      () => client.startUpload('library/App'),
      () => client.tagsPage('library/app#x'),
    ]) {
      await assert.rejects(attempt(), { code: 'INVALID_NAME' });
    }
    assert.equal(to.log.length, seen, 'no request was made with an invalid name');
  });

  it('digests a registry sends must be algorithm:hex: Docker-Content-Digest and descriptor digests', async () => {
    const src = await proxy(plain);
    const client = new RegistryClient({ host: src.host, scheme: 'http' });
    src.rules.digestHeader = 'sha256:../../../../api/v2.0/projects';
    await assert.rejects(client.headManifest('library/app', '1.0'), { code: 'INVALID_RESPONSE', message: /invalid Docker-Content-Digest/ });
    src.rules.digestHeader = undefined;

    const evil = served(OCI_MANIFEST, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:../../../../api/v2.0/projects', size: 2 },
      layers: [],
    });
    src.rules.manifests = new Map([['library/app:evil', evil]]);
    await assert.rejects(client.getManifest('library/app', 'evil'), { code: 'MANIFEST_INVALID', message: /digest: must be sha256:<64 hex>/ });
    assert.equal(src.count(/api\/v2\.0/), 0);
  });

  it('Link pages on another host (catalog and tags/list) are followed without our credentials', async () => {
    const src = await proxy(locked);
    const config = (rule: string, pattern: string) =>
      `registries:\n${registry('src', src.host, lockedCredential)}${registry('dst', dst.host)}rules:\n  - {name: ${rule}, src_registry: src, dest_registry: dst, filters: [{type: name, value: "${pattern}"}]}\n`;
    const before = recorder.requests.length;
    src.rules.link = (path) => (path.includes('/tags/list') ? `<${recorder.url}/v2/library/app/tags/list?last=1.0&n=1000>; rel="next"` : undefined);
    const viaTags = await runRule(config('tags', 'library/app'), 'tags');
    src.rules.link = (path) => (path.startsWith('/v2/_catalog') ? `<${recorder.url}/v2/_catalog?last=library%2Fapp&n=1000>; rel="next"` : undefined);
    const viaCatalog = await runRule(config('catalog', 'library/*'), 'catalog');

    const reached = recorder.requests.slice(before);
    assert.deepEqual(reached.filter((q) => q.authorization), [], 'no Authorization reached the other host');
    assert.ok(reached.some((q) => q.path.startsWith('/v2/library/app/tags/list')), 'the tags Link was followed');
    assert.ok(reached.some((q) => q.path.startsWith('/v2/_catalog')), 'the catalog Link was followed');
    assert.ok(src.log.some((e) => e.authorization), 'the registry itself got them');
    // The other host wanted credentials (401 with a challenge naming itself): an error, not a handshake.
    for (const { execution } of [viaTags, viaCatalog]) {
      assert.equal(execution.status, 'Failed');
      assert.match(execution.statusText ?? '', /^planning failed: UNAUTHORIZED: GET http:\/\/127\.0\.0\.1:\d+\/v2\/.* answered 401/);
    }
    assert.ok(!reached.some((q) => q.path.startsWith('/token')), 'no token request to the realm the other host named');
  });

  it("a Harbor API Link to another host is followed without the Harbor's Basic credentials", async () => {
    const harbor = await startHostileHarbor({ linkTo: `${recorder.url}/api/v2.0/projects?page=2&page_size=100` });
    stops.push(harbor.stop);
    const before = recorder.requests.length;
    const { execution } = await runRule(
      `registries:\n  - {name: hq, type: harbor, url: "${harbor.url}"${lockedCredential}}\n${registry('dst', dst.host)}rules:\n  - {name: r, src_registry: hq, dest_registry: dst, filters: [{type: name, value: "library/**"}]}\n`,
      'r',
    );
    const reached = recorder.requests.slice(before);
    assert.deepEqual(reached.filter((q) => q.authorization), [], 'no Authorization reached the other host');
    assert.ok(reached.some((q) => q.path.startsWith('/api/v2.0/projects?page=2')), 'the Link was followed');
    assert.ok(harbor.log[0]?.authorization?.startsWith('Basic '), 'the Harbor itself got them');
    assert.equal(execution.status, 'Failed');
    assert.match(execution.statusText ?? '', /UNAUTHORIZED/);
  });

  it('an upload Location on another host gets no credentials (PUT, PATCH, cancel), and its 401 is not a challenge', async () => {
    const to = await proxy(locked);
    to.rules.location = (location) => {
      const u = new URL(location);
      return `${recorder.url}${u.pathname}${u.search}`;
    };
    const before = recorder.requests.length;
    const results: CliResult[] = [];
    for (const extra of [[], ['--chunk-size', '64KiB']]) {
      results.push(await cli(['copy', ...INSECURE, '--dest-creds', `${USER}:${PASSWORD}`, ...extra, `${plain.host}/library/app:1.0`, `${to.host}/mirror/app:1.0`]));
    }
    const reached = recorder.requests.slice(before);
    assert.deepEqual(reached.filter((q) => q.authorization), [], 'no Authorization reached the other host');
    for (const method of ['PUT', 'PATCH', 'DELETE']) assert.ok(reached.some((q) => q.method === method), `${method} went to the Location: ${JSON.stringify(reached)}`);
    for (const r of results) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /UNAUTHORIZED/);
    }
    assert.ok(!reached.some((q) => q.path.startsWith('/token')), 'the foreign challenge was not taken up');
    assert.ok(to.log.some((e) => e.method === 'POST' && e.authorization), 'the registry itself got them');
  });

  it("a blob redirect to a host that answers 401: followed without credentials, and that host's challenge is not taken up", async () => {
    const src = await proxy(locked);
    src.rules.answers = [
      { method: 'GET', path: /\/blobs\/sha256:/, status: 307, body: '', headers: { location: `${recorder.url}/storage/blob?X-Amz-Signature=s3cr3t` } },
    ];
    const before = recorder.requests.length;
    const r = await cli(['copy', ...INSECURE, '--src-creds', `${USER}:${PASSWORD}`, `${src.host}/library/app:1.0`, `${dst.host}/redirected/app:1.0`]);
    const reached = recorder.requests.slice(before);
    assert.deepEqual(reached.filter((q) => q.authorization), [], 'no Authorization reached the storage host');
    assert.ok(reached.some((q) => q.path.startsWith('/storage/blob')), 'the redirect was followed');
    assert.ok(!reached.some((q) => q.path.startsWith('/token')), "the storage host's challenge was not taken up");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /UNAUTHORIZED/);
    assert.ok(!r.stderr.includes('s3cr3t'), 'the signed URL is redacted');
  });

  it('a plain-HTTP token realm on another host is refused before credentials are sent, even with TLS verification off', async () => {
    // The recorder answers on localhost too: the realm's host differs from the registry's (127.0.0.1).
    const sanity = await request(`http://localhost:${recorder.port}/sanity`);
    await sanity.body.dump();
    assert.ok(recorder.requests.some((q) => q.path === '/sanity'), 'localhost reaches the recorder');
    const src = await proxy(plain);
    src.rules.answers = [
      {
        path: /^\/v2\/$/,
        status: 401,
        body: '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
        headers: { 'www-authenticate': `Bearer realm="http://localhost:${recorder.port}/token",service="hostile"` },
      },
    ];
    const before = recorder.requests.length;
    const r = await cli(['copy', ...INSECURE, '--src-creds', `${USER}:${PASSWORD}`, `${src.host}/library/app:1.0`, `${dst.host}/realm/app:1.0`]);
    assert.deepEqual(recorder.requests.slice(before), [], 'nothing was sent to the realm');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AUTH_CHALLENGE.*token realm http:\/\/localhost:\d+ is plain HTTP on another host; refusing to send credentials/);
  });

  it('pagination that never ends (PAGINATION_LOOP): a tags/list Link to itself, a catalog cursor that does not move', async () => {
    const src = await proxy(plain);
    src.rules.tags = { 'library/app': [] };
    src.rules.catalog = [];
    src.rules.link = (path, sent) =>
      path.startsWith('/v2/_catalog') ? `</v2/_catalog?last=library%2Fa&n=1000&seq=${sent}>; rel="next"` : `<${path}>; rel="next"`;
    const config = (rule: string, pattern: string) =>
      `registries:\n${registry('src', src.host)}${registry('dst', dst.host)}rules:\n  - {name: ${rule}, src_registry: src, dest_registry: dst, filters: [{type: name, value: "${pattern}"}]}\n`;

    const tags = await runRule(config('tags', 'library/app'), 'tags');
    assert.equal(tags.execution.status, 'Failed');
    assert.match(
      tags.execution.statusText ?? '',
      new RegExp(`^planning failed: PAGINATION_LOOP: ${src.host.replace(/\./g, '\\.')} library/app tags: pagination stopped: page 2 repeats a page already read$`),
    );
    assert.equal(src.count(/\/tags\/list/), 1);

    const catalog = await runRule(config('catalog', 'library/*'), 'catalog');
    assert.equal(catalog.execution.status, 'Failed');
    assert.match(catalog.execution.statusText ?? '', /PAGINATION_LOOP: 127\.0\.0\.1:\d+ catalog: pagination stopped: the cursor does not move forward \(last="library\/a" after last="library\/a"\)/);
    assert.equal(src.count(/\/_catalog/), 2);
  });

  it("Harbor pages that stay full without X-Total-Count end at limits.max_pages; a Link to the same page ends at once", async () => {
    const full = await startHostileHarbor('full-pages');
    const self = await startHostileHarbor('self-link');
    stops.push(full.stop, self.stop);
    const config = (url: string) =>
      `registries:\n  - {name: hq, type: harbor, url: "${url}"}\n${registry('dst', dst.host)}rules:\n  - {name: r, src_registry: hq, dest_registry: dst, filters: [{type: name, value: "library/**"}]}\nlimits: {max_pages: 5}\n`;

    const pages = await runRule(config(full.url), 'r');
    assert.equal(pages.execution.status, 'Failed');
    assert.match(pages.execution.statusText ?? '', /^planning failed: PAGINATION_LOOP: 127\.0\.0\.1:\d+ projects: pagination stopped: more than 5 pages \(limits\.max_pages\)$/);
    assert.equal(full.log.filter((q) => q.path.startsWith('/api/v2.0/projects')).length, 5);

    const loop = await runRule(config(self.url), 'r');
    assert.equal(loop.execution.status, 'Failed');
    assert.match(loop.execution.statusText ?? '', /PAGINATION_LOOP: 127\.0\.0\.1:\d+ projects: pagination stopped: page 2 repeats a page already read/);
    assert.equal(self.log.filter((q) => q.path.startsWith('/api/v2.0/projects')).length, 1);
  });

  it('a 200-entry index naming one child: one GET of the child, and the copy is right', async () => {
    const src = await proxy(plain);
    const fan = fanOutIndex(app.top, 200);
    src.rules.manifests = new Map([['library/fan:1', fan]]);
    const r = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/fan:1`, `${dst.host}/mirror/fan:1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, fan.digest);
    assert.equal(src.count(new RegExp(`/v2/library/fan/manifests/${app.top.digest}$`), 'GET'), 1);
    assert.equal(src.count(/\/blobs\//, 'GET'), app.blobs.length, 'each blob read once');

    // One child named at two levels (directly, and inside a nested index): fetched once, and
    // pushed before both of its parents (the registry refuses an index whose children are missing).
    const nested = served(OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [app.top] });
    const dag = served(OCI_INDEX, {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_INDEX, digest: nested.digest, size: nested.bytes.length }, app.top],
    });
    src.rules.manifests.set('library/fan:dag', dag).set(`library/fan@${nested.digest}`, nested);
    const gets = src.count(new RegExp(`/manifests/${app.top.digest}$`), 'GET');
    const again = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/fan:dag`, `${dst.host}/mirror/dag:1`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).digest, dag.digest);
    assert.equal(src.count(new RegExp(`/manifests/${app.top.digest}$`), 'GET') - gets, 1);
  });

  it('indexes over limits.max_index_children, max_manifest_bytes or max_index_depth: MANIFEST_LIMIT naming the limit, nothing fetched beyond it', async () => {
    const src = await proxy(plain);
    const fake = (n: number) => ({ mediaType: OCI_MANIFEST, digest: `sha256:${String(n).repeat(64)}`, size: 500 });
    const wide = served(OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [fake(1), fake(2), fake(3)] });
    const fan = fanOutIndex(app.top, 200);
    const level2 = served(OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [app.top] });
    const level1 = served(OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: level2.digest, size: level2.bytes.length }] });
    const deep = served(OCI_INDEX, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: level1.digest, size: level1.bytes.length }] });
    src.rules.manifests = new Map([
      ['library/wide:1', wide],
      ['library/fan:1', fan],
      ['library/deep:1', deep],
      [`library/deep@${level1.digest}`, level1],
      [`library/deep@${level2.digest}`, level2],
    ]);
    src.rules.tags = { 'library/wide': ['1'], 'library/fan': ['1'], 'library/deep': ['1'] };
    const { execution, tasks } = await runRule(
      `registries:\n${registry('src', src.host)}${registry('dst', dst.host)}rules:\n  - {name: r, src_registry: src, dest_registry: dst, dest_namespace: limited, filters: [{type: name, value: "library/{wide,fan,deep}"}]}\n` +
        'limits: {max_index_children: 2, max_manifest_bytes: 4096, max_index_depth: 1}\n',
      'r',
    );
    assert.equal(execution.status, 'Failed');
    const errorOf = (repo: string) => tasks.find((t) => t.source.repository === repo)?.error;
    assert.deepEqual(errorOf('library/wide')?.code, 'MANIFEST_LIMIT');
    assert.match(errorOf('library/wide')!.message, /index sha256:[0-9a-f]{64} has more than 2 distinct children \(limits\.max_index_children\)/);
    assert.equal(errorOf('library/fan')?.code, 'MANIFEST_LIMIT');
    assert.match(errorOf('library/fan')!.message, /manifests take more than 4096 bytes \(limits\.max_manifest_bytes\)/);
    assert.equal(errorOf('library/deep')?.code, 'MANIFEST_LIMIT');
    assert.match(errorOf('library/deep')!.message, /nested 2 levels deep, more than 1 \(limits\.max_index_depth\)/);
    assert.ok(tasks.every((t) => t.attempts === 1), 'a limit is not retried');
    assert.equal(src.count(/\/manifests\/sha256:(1{64}|2{64}|3{64})$/), 0, 'no child of the wide index was fetched');
    assert.equal(src.count(new RegExp(`/manifests/${level2.digest}$`), 'GET'), 0, 'nothing below the depth limit was fetched');
  });

  it("a registry's error text: its code and at most 200 escaped characters of errors[].message; nothing of a non-JSON body", async () => {
    const src = await proxy(plain);
    const forged = `manifest unknown\n{"level":"error","msg":"forged by the registry"}\u001b[2K${'A'.repeat(400)}`;
    src.rules.answers = [
      {
        method: 'GET',
        path: /^\/v2\/library\/a\/manifests\/sha256:/,
        status: 404,
        body: JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: forged, detail: { leak: 'SECRET-DETAIL' } }] }),
      },
      { method: 'GET', path: /^\/v2\/library\/b\/manifests\/sha256:/, status: 403, contentType: 'text/html', body: '<html>INTERNAL db-7.corp.example\nstack trace</html>' },
    ];
    const { r, tasks } = await runRule(
      `registries:\n${registry('src', src.host)}${registry('dst', dst.host)}rules:\n  - {name: r, src_registry: src, dest_registry: dst, dest_namespace: errors, filters: [{type: name, value: "library/{a,b}"}]}\n`,
      'r',
    );
    assert.equal(r.code, 1);
    const a = tasks.find((t) => t.source.repository === 'library/a')!;
    assert.equal(a.error?.code, 'MANIFEST_UNKNOWN');
    const shown = /\(MANIFEST_UNKNOWN: (.*)\)$/s.exec(a.error!.message)?.[1];
    assert.ok(shown !== undefined, a.error!.message);
    assert.ok(shown.length <= 200, `${shown.length} characters of registry text`);
    assert.ok(shown.startsWith('manifest unknown\\n{\\"level\\":\\"error\\"'), shown);
    assert.ok(shown.includes('\\u001b[2K'));
    assert.ok(!/[\n\u001b]/.test(a.error!.message) && !/[\n\u001b]/.test(a.statusText ?? ''), 'no raw control character');
    assert.ok(!JSON.stringify(a).includes('SECRET-DETAIL'));

    const b = tasks.find((t) => t.source.repository === 'library/b')!;
    assert.equal(b.error?.code, 'DENIED');
    assert.ok(!/INTERNAL|db-7|html|stack/.test(JSON.stringify(b)), JSON.stringify(b));
    for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes('\n{"level":"error","msg":"forged'), 'no forged line in the output');
  });
});
