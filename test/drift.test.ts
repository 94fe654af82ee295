// Drift reconcile against real registries: `run --reconcile --dry-run` finds a retag (different),
// a lost webhook (missing) and extra destination tags, never counts referrer or cosign tags, and
// exits 0/3/1/2; `run --reconcile` copies what was missed, deletes an extra tag only after the
// source answered 404, keeps one whose manifest another tag shares, and records the drift; a tag
// pushed again at the source between the listing and the delete is not deleted.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { openEmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import { newMemoryQueue } from '../shared/adapters/local/memory-queue.js';
import { runExecution } from '../shared/executions/local-runner.js';
import { runPlanJob } from '../shared/executions/plan-job.js';
import { silentLog } from '../shared/observability/telemetry.js';
import type { DriftEntry, Task } from '../shared/executions/model.js';
import { HostStates } from '../shared/registry/backoff.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import { runCli } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { ACCEPT, manifestDigest } from './support/inspect.js';
import { freePort, startRegistry, type TestRegistry } from './support/registry.js';

/** Tags `repo:from`'s manifest as `repo:to` (a manifest PUT: what a retag is). */
async function tag(registryUrl: string, repo: string, from: string, to: string): Promise<void> {
  const got = await request(`${registryUrl}/v2/${repo}/manifests/${from}`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await got.body.arrayBuffer());
  assert.equal(got.statusCode, 200, `GET ${repo}:${from}`);
  const put = await request(`${registryUrl}/v2/${repo}/manifests/${to}`, { method: 'PUT', headers: { 'content-type': String(got.headers['content-type']) }, body });
  await put.body.dump();
  assert.equal(put.statusCode, 201, `PUT ${repo}:${to}`);
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');

describe('drift reconcile', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let a: Layout;
  let b: Layout;
  let c: Layout;
  let d: Layout;
  let dir: string;
  let config: string;
  let configText: string;
  const dataDir = () => join(dir, 'state');

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [a, b, c, d] = (await Promise.all([1, 2, 3, 4].map(() => imageLayout([{ size: 20_000 }])))) as [Layout, Layout, Layout, Layout];
    srcProxy = await startFaultProxy(src.host);
    await pushLayout(a, `${src.host}/library/app:1.0`);
    await tag(src.url, 'library/app', '1.0', 'latest');
    await pushLayout(b, `${src.host}/library/app:2.0`);
    await tag(src.url, 'library/app', '2.0', `sha256-${hex(a.top.digest)}.sig`); // cosign's signature of 1.0
    await pushLayout(a, `${src.host}/library/race:1.0`);
    dir = await mkdtemp(join(tmpdir(), 'hr-drift-'));
    config = join(dir, 'replicator.yaml');
    const filters = (repo: string) => `[{type: name, value: "${repo}"}, {type: tag, value: "*-rc*", decoration: excludes}]`;
    configText = `
registries:
  - {name: src, type: docker-registry, url: "http://${srcProxy.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
  - {name: down, type: docker-registry, url: "http://127.0.0.1:${await freePort()}"}
rules:
  - {name: mirror, src_registry: src, dest_registry: dst, dest_namespace: mirror, replicate_deletion: true, filters: ${filters('library/app')}, reconcile: {cron: "0 30 3 * * *"}}
  - {name: nodelete, src_registry: src, dest_registry: dst, dest_namespace: nodelete, filters: ${filters('library/app')}}
  - {name: race, src_registry: src, dest_registry: dst, dest_namespace: race, replicate_deletion: true, filters: ${filters('library/race')}}
  - {name: unnameable, src_registry: src, dest_registry: dst, dest_namespace: x, dest_namespace_replace_count: 3, filters: ${filters('library/app')}}
  - {name: unreachable, src_registry: src, dest_registry: down, filters: ${filters('library/app')}}
`;
    await writeFile(config, configText);
    for (const rule of ['mirror', 'nodelete', 'race']) {
      const r = await runCli(['run', rule, '--config', config, '--data-dir', dataDir(), '--quiet']);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await Promise.all([srcProxy?.stop(), src?.stop(), dst?.stop()]);
  });

  const cli = (...args: string[]) => runCli([...args, '--config', config, '--data-dir', dataDir()], { env: { HARBOR_REPLICATOR_CONFIG: undefined } });
  const history = (...args: string[]) => runCli([...args, '--data-dir', dataDir()]);
  const driftJson = async (rule: string) => {
    const r = await cli('run', rule, '--reconcile', '--dry-run', '--json');
    const out = JSON.parse(r.stdout) as { items: DriftEntry[]; counts: Record<string, number>; extrasChecked: boolean; errors: unknown[] };
    return { ...r, out };
  };

  it('no drift right after a run: --reconcile --dry-run exits 0 (referrer tags are not counted, even in sync)', async () => {
    const r = await cli('run', 'mirror', '--reconcile', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^drift of rule mirror: 0 missing, 0 different, 0 extra; 3 in sync, 0 error\(s\); nothing changed \(dry run\)$/m);
  });

  it('a retag and a lost webhook are drift, as are extra tags; referrer tags and tags outside the filters are not; exit 3, nothing changed', async () => {
    await tag(src.url, 'library/app', '2.0', 'latest'); // a retag: Harbor sends no event for it
    await pushLayout(c, `${src.host}/library/app:3.0`); // its webhook was lost
    await tag(src.url, 'library/app', '2.0', `sha256-${hex(b.top.digest)}.att`); // an attestation, at the source only
    await pushLayout(d, `${dst.host}/mirror/app:old`); // gone from the source (or never there)
    await tag(dst.url, 'mirror/app', '1.0', '1.0-alias'); // extra, but its manifest is also 1.0's
    await tag(dst.url, 'mirror/app', '1.0', `sha256-${'0'.repeat(64)}.sig`); // a signature whose subject is gone
    await pushLayout(c, `${dst.host}/mirror/app:9-rc1`); // excluded by the rule's tag filter: not in its scope
    await pushLayout(d, `${dst.host}/nodelete/app:old`);

    const { code, out, stderr } = await driftJson('mirror');
    assert.equal(code, 3, stderr);
    assert.deepEqual(out.counts, { missing: 1, different: 1, extra: 2, inSync: 2 });
    const byTag = new Map(out.items.map((e) => [e.tag, e]));
    assert.deepEqual([...byTag.keys()].sort(), ['1.0-alias', '3.0', 'latest', 'old']);
    assert.deepEqual(byTag.get('3.0'), { kind: 'missing', repository: 'mirror/app', tag: '3.0', sourceRepository: 'library/app', sourceDigest: c.top.digest });
    assert.deepEqual(byTag.get('latest'), { kind: 'different', repository: 'mirror/app', tag: 'latest', sourceRepository: 'library/app', sourceDigest: b.top.digest, destinationDigest: a.top.digest });
    assert.deepEqual(byTag.get('old'), { kind: 'extra', repository: 'mirror/app', tag: 'old', destinationDigest: d.top.digest, action: 'delete' });
    assert.equal(byTag.get('1.0-alias')?.action, 'keep');
    assert.match(byTag.get('1.0-alias')!.reason!, new RegExp(`^${a.top.digest} is also tagged .*\\b1\\.0\\b.* at the destination`));
    assert.ok(out.items.every((e) => !e.tag.startsWith('sha256-')), 'referrer tags are never drift');
    assert.deepEqual(out.errors, []);

    const text = await cli('run', 'mirror', '--reconcile', '--dry-run');
    assert.equal(text.code, 3);
    const lines = text.stdout.trim().split('\n').sort();
    assert.deepEqual(lines, [
      `different ${dst.host}/mirror/app:latest is ${a.top.digest}, source library/app@${b.top.digest}`,
      `extra ${dst.host}/mirror/app:1.0-alias ${a.top.digest} (kept: ${byTag.get('1.0-alias')!.reason})`,
      `extra ${dst.host}/mirror/app:old ${d.top.digest} (a reconcile deletes it)`,
      `missing ${dst.host}/mirror/app:3.0 (source library/app@${c.top.digest})`,
    ]);
    assert.match(text.stderr, /drift of rule mirror: 1 missing, 1 different, 2 extra; 2 in sync/);

    // Nothing changed at the destination.
    assert.equal(await manifestDigest(dst.url, 'mirror/app', 'old'), d.top.digest);
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '3.0'), undefined);
    assert.equal(await manifestDigest(dst.url, 'mirror/app', 'latest'), a.top.digest);

    // Without replicate_deletion, tags the source no longer has are meant to stay: not looked for.
    const keep = await driftJson('nodelete');
    assert.equal(keep.code, 3);
    assert.equal(keep.out.extrasChecked, false);
    assert.deepEqual(keep.out.counts, { missing: 1, different: 1, extra: 0, inSync: 2 });
  });

  it('exit 2 on usage (unknown rule, no config), 1 when the check fails or is incomplete', async () => {
    const unknown = await cli('run', 'nosuch', '--reconcile', '--dry-run');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /nosuch/);
    const noConfig = await runCli(['run', 'mirror', '--reconcile', '--dry-run', '--config', join(dir, 'missing.yaml')]);
    assert.equal(noConfig.code, 2);

    const down = await cli('run', 'unreachable', '--reconcile', '--dry-run');
    assert.equal(down.code, 1, down.stderr);
    assert.match(down.stderr, /rule unreachable failed/);

    // The destination cannot take the name (Harbor's flattening error): that artifact is not checked.
    const unnamed = await driftJson('unnameable');
    assert.equal(unnamed.code, 1);
    assert.equal(unnamed.out.errors.length, 4, JSON.stringify(unnamed.out.errors)); // 1.0, latest, 2.0, 3.0 (referrer tags follow their subjects: no artifacts of their own)
  });

  it('run --reconcile: copies what was missed, deletes the extra tag the source answers 404 for, keeps the shared one; records the drift', async () => {
    const headsBefore = srcProxy.log.filter((e) => e.method === 'HEAD' && e.path === '/v2/library/app/manifests/old').length;
    const r = await cli('run', 'mirror', '--reconcile', '--quiet', '--json');
    assert.equal(r.code, 0, r.stderr);
    const execution = JSON.parse(r.stdout) as { id: string; trigger: string; status: string };
    assert.equal(execution.trigger, 'reconcile');
    assert.equal(execution.status, 'Succeed');

    assert.equal(await manifestDigest(dst.url, 'mirror/app', 'latest'), b.top.digest, 'the retag copied');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '3.0'), c.top.digest, 'the missed push copied');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', 'old'), undefined, 'the extra tag deleted');
    assert.equal(
      srcProxy.log.filter((e) => e.method === 'HEAD' && e.path === '/v2/library/app/manifests/old' && e.status === 404).length,
      headsBefore + 1,
      'after one HEAD at the source that answered 404',
    );
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0-alias'), a.top.digest, 'kept: its manifest is also 1.0');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), a.top.digest);
    assert.equal(await manifestDigest(dst.url, 'mirror/app', `sha256-${'0'.repeat(64)}.sig`), a.top.digest, 'a referrer tag is never deleted');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '9-rc1'), c.top.digest, 'outside the rule: left alone');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', `sha256-${hex(b.top.digest)}.att`), b.top.digest, 'a referrer tag follows its subject (2.0)');

    const tasks = JSON.parse((await history('tasks', execution.id, '--json')).stdout) as Task[];
    const deletions = tasks.filter((t) => t.operation === 'deletion');
    assert.equal(deletions.length, 1, JSON.stringify(tasks));
    assert.deepEqual(deletions[0]!.destination.tags, ['old']);
    assert.equal(deletions[0]!.status, 'Success');
    assert.equal(deletions[0]!.statusText, `deleted old (${d.top.digest}): not at the source`);

    const listed = JSON.parse((await history('executions', 'list', '--trigger', 'reconcile', '--json')).stdout) as Array<{ id: string; trigger: string }>;
    assert.deepEqual(listed.map((e) => [e.id, e.trigger]), [[execution.id, 'reconcile']]);

    const store = await openEmbeddedStore(dataDir());
    try {
      const drift = await store.store.lastDrift('mirror');
      assert.equal(drift?.execution, execution.id);
      assert.deepEqual(drift?.counts, { missing: 1, different: 1, extra: 2, inSync: 2 });
      assert.ok(Date.parse(drift!.takenAt) > Date.now() - 60_000);
      assert.equal(await store.store.lastDrift('nodelete'), undefined, 'no reconcile of that rule');
    } finally {
      await store.close();
    }

    // What is left: the kept tag, still extra.
    const again = await driftJson('mirror');
    assert.equal(again.code, 3);
    assert.deepEqual(again.out.counts, { missing: 0, different: 0, extra: 1, inSync: 4 });
  });

  it('a tag pushed again at the source between the listing and the delete is not deleted; a source answer other than 404 deletes nothing', async () => {
    await pushLayout(d, `${dst.host}/race/race:gone`);
    await pushLayout(b, `${dst.host}/race/race:denied`);
    let pushed = false;
    // The deletion task's HEAD at the source: the tag is pushed there just before it is answered.
    srcProxy.add({
      method: 'HEAD',
      path: /^\/v2\/library\/race\/manifests\/gone$/,
      fault: {
        kind: 'before',
        hook: async () => {
          await tag(src.url, 'library/race', '1.0', 'gone');
          pushed = true;
        },
      },
    });
    srcProxy.add({ method: 'HEAD', path: /^\/v2\/library\/race\/manifests\/denied$/, fault: { kind: 'status', status: 403, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'no' }] }) } });

    const store = await openEmbeddedStore(dataDir());
    try {
      const loaded = parseConfig(configText, 'drift.yaml');
      const runtime = await ruleRuntime(loaded, 'race', new RegistryClients({ secrets: {}, hosts: new HostStates({ maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterMs: 100 }) }), { secrets: {} });
      const e = await runExecution({ store: store.store, newQueue: newMemoryQueue, config: loaded, runtime, trigger: 'reconcile', maxAttempts: 1 });
      assert.ok(pushed, 'the source was changed just before its HEAD was answered');
      assert.equal(await manifestDigest(dst.url, 'race/race', 'gone'), d.top.digest, 'not deleted: the source had it again');
      assert.equal(await manifestDigest(dst.url, 'race/race', 'denied'), b.top.digest, 'not deleted: the source did not say 404');
      const tasks = (await store.store.listTasks(e.id, {})).items.filter((t) => t.operation === 'deletion');
      const byTag = new Map(tasks.map((t) => [t.destination.tags[0], t]));
      assert.equal(byTag.get('gone')?.status, 'Success');
      assert.equal(byTag.get('gone')?.statusText, `kept: gone is at the source again (${a.top.digest})`);
      assert.equal(byTag.get('denied')?.status, 'Error');
      assert.equal(byTag.get('denied')?.error?.code, 'DENIED');
      assert.equal(e.status, 'Failed');
      const drift = await store.store.lastDrift('race');
      assert.deepEqual(drift?.counts, { missing: 0, different: 0, extra: 2, inSync: 1 });
      assert.deepEqual(drift?.items.map((i) => [i.tag, i.action]).sort(), [['denied', 'delete'], ['gone', 'delete']]);
    } finally {
      await store.close();
    }
  });

  it('a reconcile planning resumed after its planner died records nothing twice, and its drift still counts what the dead planner recorded', async () => {
    const store = await openEmbeddedStore(dataDir());
    try {
      const loaded = parseConfig(configText, 'drift.yaml');
      const runtime = await ruleRuntime(loaded, 'mirror', new RegistryClients({ secrets: {} }), { secrets: {} });
      const e = await store.store.createExecution({ rule: 'mirror', trigger: 'reconcile' });
      // What the planner that died had recorded: one artifact, in sync.
      await store.store.addTasks(e.id, 1, [
        { operation: 'copy', source: { registry: 'src', repository: 'library/app', tags: ['1.0'] }, destination: { registry: 'dst', repository: 'mirror/app', tags: ['1.0'] }, digest: a.top.digest, status: 'Success', statusText: 'in sync' },
      ]);
      const sent: unknown[] = [];
      await runPlanJob({ executionId: e.id, rule: 'mirror', resume: true }, { store: store.store, taskQueue: { send: async (m) => void sent.push(...m) }, runtime: async () => runtime, log: silentLog });
      const tasks = (await store.store.listTasks(e.id, { limit: 1000 })).items;
      assert.equal(tasks.filter((t) => t.source.tags.includes('1.0')).length, 1, 'the recorded artifact is not recorded again');
      assert.deepEqual(tasks.map((t) => t.id), tasks.map((_, i) => i + 1), 'ids continue');
      assert.equal((await store.store.getExecution(e.id))?.planned, true);
      const drift = await store.store.lastDrift('mirror');
      assert.equal(drift?.execution, e.id);
      assert.deepEqual(drift?.counts, { missing: 0, different: 0, extra: 1, inSync: 4 }, '1.0 counted in sync, though planned before');
      // Nothing to copy or delete (the extra tag left shares its manifest); the artifacts in sync whose
      // digests have referrer tags at the source are queued all the same, for the copier to check them.
      const queued = (sent as Array<{ taskId: number }>).map((m) => tasks.find((t) => t.id === m.taskId)!);
      assert.ok(queued.every((t) => t.operation === 'copy' && [a.top.digest, b.top.digest].includes(t.digest!)), JSON.stringify(queued));
    } finally {
      await store.close();
    }
  });
});
