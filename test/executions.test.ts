// Executions end to end on the embedded store with real registries (and a fault proxy):
// planning, workers, retries until final, idempotent redelivery, stop mid-blob, single-active
// rules, deletions, the CLI's run/executions/tasks and the data-dir lock.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedStore, type EmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import { ACTIVE_REASON, runExecution, type RunEvent } from '../shared/executions/local-runner.js';
import { planArtifactEvent } from '../shared/executions/planner.js';
import { processTask } from '../shared/executions/worker.js';
import { newMemoryQueue, MemoryQueue } from '../shared/adapters/local/memory-queue.js';
import { HostStates } from '../shared/registry/backoff.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import { CLI, runCli } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const FAST = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 1000 };

describe('executions', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let small: Layout;
  let big: Layout;
  let embedded: EmbeddedStore;
  let dir: string;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [small, big] = await Promise.all([imageLayout([{ size: 30_000 }]), imageLayout([{ size: 6 * 1024 * 1024 }])]);
    for (const ref of ['library/a:1', 'library/a:2', 'library/b:1', 'library/c:1', 'library/skip:rc1']) await pushLayout(small, `${src.host}/${ref}`);
    await pushLayout(big, `${src.host}/large/blob:1`);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(src.host), startFaultProxy(dst.host)]);
    dir = await mkdtemp(join(tmpdir(), 'hr-exec-'));
    embedded = await openEmbeddedStore(join(dir, 'state'));
  });
  after(async () => {
    await embedded?.close();
    await Promise.all([srcProxy?.stop(), dstProxy?.stop(), src?.stop(), dst?.stop()]);
  });

  const yaml = (rules: string) => `
registries:
  - {name: src, type: docker-registry, url: "http://${srcProxy.host}"}
  - {name: dst, type: docker-registry, url: "http://${dstProxy.host}"}
rules:
${rules}`;
  const runtimeOf = async (rules: string, name: string) => {
    const config = parseConfig(yaml(rules), 'test.yaml');
    return { config, runtime: await ruleRuntime(config, name, new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} }) };
  };
  const run = async (rules: string, name: string, extra: { signal?: AbortSignal; onEvent?: (e: RunEvent) => void } = {}) =>
    runExecution({ store: embedded.store, newQueue: newMemoryQueue, ...(await runtimeOf(rules, name)), trigger: 'manual', retryDelayMs: () => 20, ...extra });
  const mirror = (name: string, ns: string, filters = '[{type: name, value: "library/*"}, {type: tag, value: "rc*", decoration: excludes}]') =>
    `  - {name: ${name}, src_registry: src, dest_registry: dst, dest_namespace: ${ns}, filters: ${filters}}`;

  it('runs a rule to completion: one task per tag, Succeed, every image at the destination', async () => {
    const e = await run(mirror('m1', 'm1'), 'm1');
    assert.equal(e.status, 'Succeed');
    assert.deepEqual([e.counts.total, e.counts.succeed, e.counts.failed], [4, 4, 0]);
    for (const [repo, tag] of [['m1/a', '1'], ['m1/a', '2'], ['m1/b', '1'], ['m1/c', '1']] as const) {
      assert.equal(await manifestDigest(dst.url, repo, tag), small.top.digest);
    }
    const tasks = (await embedded.store.listTasks(e.id, {})).items;
    assert.equal(tasks.length, 4);
    assert.ok(tasks.every((t) => t.status === 'Success' && t.attempts === 1 && t.startTime && t.endTime));
    assert.ok(tasks.some((t) => t.bytes > 30_000), 'bytes recorded');
  });

  it('a re-run of an unchanged rule: tags in sync are recorded by the planner, nothing queued or pushed', async () => {
    const puts = () => dstProxy.log.filter((x) => x.method === 'PUT' || x.method === 'POST').length;
    const before = puts();
    const e = await run(mirror('m1', 'm1'), 'm1');
    assert.equal(e.status, 'Succeed');
    const tasks = (await embedded.store.listTasks(e.id, {})).items;
    assert.ok(tasks.every((t) => t.status === 'Success' && t.statusText === 'in sync' && t.attempts === 0), JSON.stringify(tasks));
    assert.equal(puts(), before, 'no upload, no manifest push');
  });

  it('a task that fails is retried; its status is final only when attempts are exhausted', async () => {
    // The manifest PUT of m2/b fails 3 times (more than the copy's own retries), then works.
    dstProxy.add({ method: 'PUT', path: /\/v2\/m2\/b\/manifests\//, fault: { kind: 'status', status: 503 }, times: 3 });
    const events: RunEvent[] = [];
    const e = await run(mirror('m2', 'm2'), 'm2', { onEvent: (x) => events.push(x) });
    assert.equal(e.status, 'Succeed');
    const b = (await embedded.store.listTasks(e.id, {})).items.find((t) => t.source.repository === 'library/b')!;
    assert.equal(b.attempts, 2);
    assert.equal(b.statusText, '', 'the retry note is cleared on success');
    assert.ok(events.some((x) => x.kind === 'task-retry'));
    assert.equal(await manifestDigest(dst.url, 'm2/b', '1'), small.top.digest);
  });

  it('a task that keeps failing ends Error with the reason; the execution is Failed, the others succeed', async () => {
    dstProxy.add({ method: 'PUT', path: /\/v2\/m3\/c\/manifests\//, fault: { kind: 'status', status: 503 }, times: 100 });
    const e = await run(mirror('m3', 'm3'), 'm3');
    assert.equal(e.status, 'Failed');
    assert.deepEqual([e.counts.succeed, e.counts.failed], [3, 1]);
    const [failed] = (await embedded.store.listTasks(e.id, { status: 'Error' })).items;
    assert.equal(failed?.source.repository, 'library/c');
    assert.equal(failed?.attempts, 3);
    assert.match(failed?.statusText ?? '', /503/);
  });

  it('a delivery repeated after success runs nothing and counts once', async () => {
    const e = await run(mirror('m4', 'm4'), 'm4');
    const before = await embedded.store.getExecution(e.id);
    const queue = new MemoryQueue<{ executionId: string; taskId: number }>();
    await queue.send([{ executionId: e.id, taskId: 1 }]);
    const [msg] = await queue.receive(1, 0);
    const { runtime } = await runtimeOf(mirror('m4', 'm4'), 'm4');
    await processTask(msg!, { store: embedded.store, taskQueue: queue, runtime: async () => runtime });
    assert.deepEqual((await embedded.store.getExecution(e.id))?.counts, before?.counts);
    assert.equal(queue.size, 0, 'acknowledged');
  });

  it('stop during a large blob: the task ends Stopped, its upload is cancelled, no manifest', async () => {
    srcProxy.add({ method: 'GET', path: new RegExp(`/blobs/${big.blobs.find((b) => b.size > 1_000_000)!.digest}`), fault: { kind: 'throttle', bytesPerSecond: 2 * 1024 * 1024 } });
    const stop = new AbortController();
    const e = await run(mirror('m5', 'm5', '[{type: name, value: "large/**"}]'), 'm5', {
      signal: stop.signal,
      onEvent: (x) => {
        if (x.kind === 'copy' && x.event.kind === 'blob-progress' && x.event.done > 1024 * 1024) stop.abort();
      },
    });
    assert.equal(e.status, 'Stopped');
    const [t] = (await embedded.store.listTasks(e.id, {})).items;
    assert.equal(t?.status, 'Stopped');
    assert.equal(await manifestDigest(dst.url, 'm5/blob', '1'), undefined);
    assert.ok(dstProxy.log.some((x) => x.method === 'DELETE' && x.path.includes('/m5/blob/blobs/uploads/')), 'upload session cancelled');
  });

  it('single_active_replication: a run while one is active is recorded Failed with Harbor\'s reason', async () => {
    const rules = `  - {name: solo, src_registry: src, dest_registry: dst, dest_namespace: solo, single_active_replication: true, filters: [{type: name, value: library/a}]}`;
    const active = await embedded.store.createExecution({ rule: 'solo', trigger: 'scheduled' });
    const e = await run(rules, 'solo');
    assert.equal(e.status, 'Failed');
    assert.equal(e.statusText, ACTIVE_REASON);
    assert.equal(e.counts.total, 0);
    await embedded.store.finishPlanning(active.id, 0);
    assert.equal((await run(rules, 'solo')).status, 'Succeed', 'runs once nothing else is active');
  });

  it("deletion tasks delete by digest at the destination; already gone counts as success", async () => {
    await pushLayout(small, `${dst.host}/del/a:1`);
    const rules = `  - {name: del, src_registry: src, dest_registry: dst, dest_namespace: del, replicate_deletion: true, trigger: {type: event_based}}`;
    const { runtime } = await runtimeOf(rules, 'del');
    const planned = planArtifactEvent(runtime.rule, { operation: 'deletion', repository: 'library/a', digest: small.top.digest, tags: ['1'] }, {
      source: 'src',
      destination: 'dst',
      destinationType: 'docker-registry',
    });
    assert.ok('task' in planned);
    const e = await embedded.store.createExecution({ rule: 'del', trigger: 'event_based' });
    await embedded.store.addTasks(e.id, 1, [planned.task, planned.task]);
    await embedded.store.finishPlanning(e.id, 2);
    const queue = new MemoryQueue<{ executionId: string; taskId: number }>();
    await queue.send([{ executionId: e.id, taskId: 1 }]);
    await queue.send([{ executionId: e.id, taskId: 2 }]);
    for (const msg of await queue.receive(2, 0)) await processTask(msg, { store: embedded.store, taskQueue: queue, runtime: async () => runtime });
    assert.equal(await manifestDigest(dst.url, 'del/a', '1'), undefined, 'deleted');
    const tasks = (await embedded.store.listTasks(e.id, {})).items;
    assert.deepEqual(tasks.map((t) => [t.status, t.statusText]), [['Success', 'deleted'], ['Success', 'already gone']]);
    assert.equal((await embedded.store.getExecution(e.id))?.status, 'Succeed');
  });

  it('a tag moved at the source after planning never goes backwards: the planned digest is pushed by digest only, the tag left alone', async () => {
    // Planned when `moving/app:1` named `small`; the tag then moved to `other` (as a second push
    // of `latest` does while the first copy waits for a retry). A source of its own: the other
    // tests list the shared one.
    const own = await startRegistry();
    try {
      const other = await imageLayout([{ size: 12_345 }]);
      await pushLayout(small, `${own.host}/moving/app:1`);
      await pushLayout(small, `${own.host}/moving/app:2`); // a second tag of the task, which stays
      await pushLayout(other, `${own.host}/moving/app:1`);
      const config = parseConfig(
        `registries:
  - {name: src, type: docker-registry, url: "http://${own.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: mv, src_registry: src, dest_registry: dst, dest_namespace: mv, dest_namespace_replace_count: 0}
`,
        'test.yaml',
      );
      const runtime = await ruleRuntime(config, 'mv', new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
      const e = await embedded.store.createExecution({ rule: 'mv', trigger: 'event_based' });
      await embedded.store.addTasks(e.id, 1, [
        { operation: 'copy', source: { registry: 'src', repository: 'moving/app', tags: ['1', '2'] }, destination: { registry: 'dst', repository: 'mv/moving/app', tags: ['1', '2'] }, digest: small.top.digest },
      ]);
      await embedded.store.finishPlanning(e.id, 1);
      const queue = new MemoryQueue<{ executionId: string; taskId: number }>();
      await queue.send([{ executionId: e.id, taskId: 1 }]);
      const [msg] = await queue.receive(1, 0);
      await processTask(msg!, { store: embedded.store, taskQueue: queue, runtime: async () => runtime });
      const [t] = (await embedded.store.listTasks(e.id, {})).items;
      assert.equal(t?.status, 'Success');
      assert.equal(t?.statusText, `tag 1 moved to ${other.top.digest}; superseded (the planned digest was pushed by digest only)`, 'the text names the superseded tag, and only it');
      assert.equal(await manifestDigest(dst.url, 'mv/moving/app', '2'), small.top.digest, 'the tag that did not move is pushed');
      assert.equal(await manifestDigest(dst.url, 'mv/moving/app', small.top.digest), small.top.digest, 'the planned content is there, by digest');
      assert.equal(await manifestDigest(dst.url, 'mv/moving/app', '1'), undefined, 'the tag was not pushed with the older content');

      // A run now plans what the tag names: the newer content, under the tag.
      const again = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config, runtime, trigger: 'manual' });
      assert.equal(again.status, 'Succeed', JSON.stringify((await embedded.store.listTasks(again.id, {})).items));
      assert.equal(await manifestDigest(dst.url, 'mv/moving/app', '1'), other.top.digest);
      assert.equal(await manifestDigest(dst.url, 'mv/moving/app', '2'), small.top.digest);
    } finally {
      await own.stop();
    }
  });

  it("speed is Harbor's Kbps: a task's bytes never flow faster than speed x 1024 / 8 per second", async (t) => {
    const own = await startRegistry(); // a source of its own: the other tests list the shared one
    try {
      const blob = await imageLayout([{ size: 600_000 }]);
      await pushLayout(blob, `${own.host}/paced/app:1`);
      const speed = 4000; // Kbps = 512,000 bytes per second
      const config = parseConfig(
        `registries:
  - {name: src, type: docker-registry, url: "http://${own.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: paced, src_registry: src, dest_registry: dst, dest_namespace: paced, speed: ${speed}}
`,
        'paced.yaml',
      );
      const runtime = await ruleRuntime(config, 'paced', new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
      let copied = 0;
      const started = performance.now();
      const e = await runExecution({
        store: embedded.store,
        newQueue: newMemoryQueue,
        config,
        runtime,
        trigger: 'manual',
        onEvent: (x) => {
          if (x.kind === 'task-end') copied += x.bytes;
        },
      });
      const seconds = (performance.now() - started) / 1000;
      assert.equal(e.status, 'Succeed');
      assert.ok(copied >= 600_000, `copied ${copied}`);
      const rate = copied / seconds;
      t.diagnostic(`speed ${speed} Kbps (${(speed * 1024) / 8} bytes/s): ${copied} bytes in ${seconds.toFixed(2)} s, ${Math.round(rate)} bytes/s`);
      // An upper bound on the rate only (a slow machine may go slower): read as KB/s, this took 1/8 of the time.
      assert.ok(rate <= ((speed * 1024) / 8) * 1.1, `${Math.round(rate)} bytes/s is more than ${speed} Kbps allows`);
    } finally {
      await own.stop();
    }
  });

  it('the event planner applies the rule to one artifact with all its tags', () => {
    const rule = parseConfig(yaml(mirror('ev', 'ev')), 't.yaml').rule('ev');
    const names = { source: 'src', destination: 'dst', destinationType: 'docker-registry' as const };
    const push = planArtifactEvent(rule, { operation: 'copy', repository: 'library/a', digest: 'sha256:x', tags: ['1', 'rc1'] }, names);
    assert.ok('task' in push);
    assert.deepEqual(push.task.destination, { registry: 'dst', repository: 'ev/a', tags: ['1'] });
    assert.deepEqual(planArtifactEvent(rule, { operation: 'copy', repository: 'other/a', digest: 'sha256:x', tags: ['1'] }, names), {
      excluded: 'repository does not match name filter "library/*"',
    });
    assert.deepEqual(planArtifactEvent(rule, { operation: 'deletion', repository: 'library/a', digest: 'sha256:x', tags: ['1'] }, names), {
      excluded: 'deletion not replicated (replicate_deletion is off)',
    });
  });

  describe('CLI', () => {
    let config: string;
    let dataDir: string;
    before(async () => {
      config = join(dir, 'replicator.yaml');
      dataDir = join(dir, 'cli-state');
      await writeFile(config, yaml(`${mirror('cli', 'cli')}\n${mirror('broken', 'broken', '[{type: name, value: library/a}]')}`));
    });

    it('run prints the execution summary; executions and tasks read the history afterwards', async () => {
      const r = await runCli(['run', 'cli', '--config', config, '--data-dir', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      const id = /^execution (\d+) Succeed: 4 task\(s\): 4 succeed, 0 failed/m.exec(r.stdout)?.[1];
      assert.ok(id, r.stdout);
      assert.match(r.stderr, /planned 4 task\(s\): 4 to copy, 0 already in sync, 0 error\(s\), 2 left out by filters/);
      assert.match(r.stderr, /\[\d\/4\] Success src\/library\/a:1 -> dst\/cli\/a:1/);

      const list = await runCli(['executions', 'list', '--data-dir', dataDir, '--json']);
      const executions = JSON.parse(list.stdout) as Array<{ id: string; status: string; rule: string }>;
      assert.deepEqual(executions.map((x) => [x.id, x.rule, x.status]), [[id, 'cli', 'Succeed']]);
      const show = await runCli(['executions', 'show', id!, '--data-dir', dataDir]);
      assert.match(show.stdout, new RegExp(`^execution ${id} Succeed`));
      const tasks = await runCli(['tasks', id!, '--data-dir', dataDir]);
      assert.match(tasks.stdout, /^ID\s+OPERATION\s+STATUS\s+SOURCE\s+DESTINATION/);
      assert.equal(tasks.stdout.trim().split('\n').length, 5);
      const none = await runCli(['tasks', id!, '--status', 'error', '--data-dir', dataDir]);
      assert.match(none.stdout, /no tasks with status Error/);
      const bad = await runCli(['tasks', id!, '--status', 'broken', '--data-dir', dataDir]);
      assert.equal(bad.code, 2);
    });

    it('exit 1 when a task failed, and the failed task is listed with its reason', async () => {
      // A refusal is not retried (retries are covered above with short delays).
      dstProxy.add({
        method: 'PUT',
        path: /\/v2\/broken\/a\/manifests\//,
        fault: { kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' },
        times: 1000,
      });
      const r = await runCli(['run', 'broken', '--config', config, '--data-dir', dataDir], { timeoutMs: 120_000 });
      assert.equal(r.code, 1, r.stderr);
      const id = /^execution (\d+) Failed/m.exec(r.stdout)?.[1];
      assert.ok(id, r.stdout);
      const failed = await runCli(['tasks', id!, '--status', 'Error', '--json', '--data-dir', dataDir]);
      const tasks = JSON.parse(failed.stdout) as Array<{ statusText: string; attempts: number }>;
      assert.equal(tasks.length, 2);
      assert.ok(tasks.every((t) => /DENIED: .*requested access to the resource is denied/.test(t.statusText) && t.attempts === 1), JSON.stringify(tasks));
    });

    it('local mode loads no AWS SDK and no emulator: run, executions and serve, every package they resolve recorded', async () => {
      // The engine from tsc's output (the bundle inlines packages), with a resolve hook that
      // records the package of every module resolved.
      const bin = fileURLToPath(new URL('../functions/cli/bin.js', import.meta.url));
      const loaded = join(dir, 'loaded.txt');
      const hooks = join(dir, 'hooks.mjs');
      await writeFile(
        hooks,
        `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url);
  if (m) appendFileSync(${JSON.stringify(loaded)}, m[1] + '\\n');
  return r;
}
`,
      );
      const register = join(dir, 'register.mjs');
      await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
      const serveConfig = join(dir, 'serve.yaml');
      await writeFile(serveConfig, `${yaml(mirror('nosdk', 'nosdk'))}\napi: {token: {env: NOSDK_TOKEN}}\n`);
      const node = (args: string[], until?: RegExp) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, ['--import', `file://${register}`, bin, ...args], { env: { ...process.env, NOSDK_TOKEN: 'x' }, stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => {
            stderr += d.toString();
            if (until?.test(stderr)) child.kill('SIGTERM');
          });
          child.on('close', (code) => resolve({ code, stderr }));
        });
      const state = join(dir, 'nosdk-state');
      const run = await node(['run', 'nosdk', '--config', serveConfig, '--data-dir', state]);
      assert.equal(run.code, 0, run.stderr);
      const list = await node(['executions', 'list', '--data-dir', state]);
      assert.equal(list.code, 0, list.stderr);
      const serve = await node(['serve', '--config', serveConfig, '--listen', '127.0.0.1:0', '--data-dir', state], /serving on/);
      assert.match(serve.stderr, /serving on/);
      const packages = new Set((await readFile(loaded, 'utf8')).trim().split('\n'));
      assert.ok(packages.has('better-sqlite3'), `the hook saw the store: ${[...packages].join(' ')}`);
      assert.deepEqual([...packages].filter((p) => /^@aws-sdk\/|^@smithy\/|^dynalite$/.test(p)), []);
    });

    it('a second process on the same data dir fails at once naming the owner', async () => {
      const holder = spawn(process.execPath, [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(new URL('../shared/adapters/local/embedded-store.js', import.meta.url).href)}); await m.openEmbeddedStore(${JSON.stringify(dataDir)}); console.log('locked'); setTimeout(() => {}, 60000);`,
      ], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
        const r = await runCli(['executions', 'list', '--data-dir', dataDir]);
        assert.equal(r.code, 2);
        assert.equal(r.stderr.trim(), `harbor-replicator: data dir ${dataDir} in use by pid ${holder.pid}`);
      } finally {
        holder.kill('SIGKILL');
      }
      void CLI;
    });
  });
});
