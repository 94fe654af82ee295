// `serve` end to end with real registries: Harbor's webhook (auth, limits, validation,
// idempotency), the management API, the scheduler on an injected clock, stop during a large
// blob, and a SIGKILL mid-execution followed by a restart that completes it.
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { startServer, type RunningServer } from '../functions/serve/server.js';
import { CLI, runCli } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { startHarborFake, type HarborFake } from './support/harbor-fake.js';
import { manifestDigest } from './support/inspect.js';
import { freePort, startRegistry, stopProcess, type TestRegistry } from './support/registry.js';

const WEBHOOK_AUTH = 'Bearer harbor-webhook-s3cret';
const TOKEN = 'api-t0ken';

/** Harbor's webhook payload (pkg/notifier/formats/default.go) for one artifact. */
function harborPayload(type: string, host: string, repository: string, digest: string, tag: string | undefined, occurAt = 1_700_000_000) {
  return {
    type,
    occur_at: occurAt,
    operator: 'admin',
    event_data: {
      resources: [{ digest, tag: tag ?? digest, resource_url: `${host}/${repository}${tag ? `:${tag}` : `@${digest}`}` }],
      repository: { date_created: 1_677_053_165, name: repository.split('/').pop(), namespace: repository.split('/')[0], repo_full_name: repository, repo_type: 'public' },
    },
  };
}

class FakeClock {
  t = Date.parse('2026-11-23T01:59:00Z');
  timers: Array<{ fn: () => void; at: number }> = [];
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    const entry = { fn, at: this.t + ms };
    this.timers.push(entry);
    return { cancel: () => (this.timers = this.timers.filter((x) => x !== entry)) };
  };
  /** Moves time forward and runs the timers that came due. */
  advance(ms: number) {
    this.t += ms;
    for (const due of this.timers.filter((x) => x.at <= this.t)) {
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
  }
}

describe('serve', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let harbor: HarborFake;
  let app: Layout;
  let big: Layout;
  let dir: string;
  let server: RunningServer;
  const clock = new FakeClock();

  const configText = () => `
registries:
  - {name: hq, type: docker-registry, url: "http://${src.host}"}
  - {name: slow, type: docker-registry, url: "http://${srcProxy.host}"}
  - {name: harbor, type: harbor, url: "${harbor.url}", credential: {username: admin, password: {env: HARBOR_PW}}}
  - {name: branch, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: on-push, src_registry: hq, dest_registry: branch, dest_namespace: pushed, replicate_deletion: true, trigger: {type: event_based}, filters: [{type: name, value: "library/**"}]}
  - {name: from-harbor, src_registry: harbor, dest_registry: branch, dest_namespace: fromharbor, trigger: {type: event_based}}
  - {name: labelled, src_registry: harbor, dest_registry: branch, dest_namespace: labelled, trigger: {type: event_based}, filters: [{type: name, value: "other/**"}, {type: label, value: approved}]}
  - {name: nightly, src_registry: hq, dest_registry: branch, dest_namespace: nightly, filters: [{type: name, value: library/app}], trigger: {type: scheduled, trigger_settings: {cron: "0 0 2 * * *", timezone: UTC}}}
  - {name: big, src_registry: slow, dest_registry: branch, dest_namespace: big, filters: [{type: name, value: "large/**"}]}
webhook: {auth_header: {env: WEBHOOK_AUTH}}
api: {token: {env: API_TOKEN}}
`;

  before(async () => {
    process.env.WEBHOOK_AUTH = WEBHOOK_AUTH;
    process.env.API_TOKEN = TOKEN;
    process.env.HARBOR_PW = 'Harbor12345';
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [app, big] = await Promise.all([imageLayout([{ size: 40_000 }]), imageLayout([{ size: 8 * 1024 * 1024 }])]);
    for (const ref of ['library/app:1.0', 'library/app:latest', 'other/app:1.0']) await pushLayout(app, `${src.host}/${ref}`);
    await pushLayout(big, `${src.host}/large/blob:1`);
    srcProxy = await startFaultProxy(src.host);
    harbor = await startHarborFake(src, { user: 'admin', password: 'Harbor12345', projects: ['library', 'other', 'large'] });
    dir = await mkdtemp(join(tmpdir(), 'hr-serve-'));
    server = await startServer({
      config: parseConfig(configText(), 'serve.yaml'),
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'state'),
      log: silentLog,
      schedulerClock: clock,
      retryDelayMs: () => 50,
      graceMs: 2000,
    });
  });
  after(async () => {
    await server?.close();
    await Promise.all([srcProxy?.stop(), harbor?.stop(), src?.stop(), dst?.stop()]);
  });

  const webhook = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/webhooks/harbor`, {
      method: 'POST',
      headers: { authorization: WEBHOOK_AUTH, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const executionCount = async () => (await api('/executions?limit=500')).body.items.length as number;
  /** Polls an execution until it is final (bounded). */
  const finished = async (id: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = (await api(`/executions/${id}`)).body;
      if (e.status !== 'InProgress') return e;
      if (Date.now() > deadline) throw new Error(`execution ${id} still in progress: ${JSON.stringify(e)}`);
      await sleep(50);
    }
  };

  it('a pushed tag: Harbor\'s payload -> 202 with the execution, Succeed, the image at the destination', async () => {
    const res = await webhook(harborPayload('PUSH_ARTIFACT', src.host, 'library/app', app.top.digest, '1.0'));
    assert.equal(res.status, 202);
    const { executions } = (await res.json()) as { executions: string[] };
    assert.equal(executions.length, 1, 'one matching rule');
    const e = await finished(executions[0]!);
    assert.equal(e.status, 'Succeed');
    assert.equal(e.trigger, 'event_based');
    assert.equal(await manifestDigest(dst.url, 'pushed/app', '1.0'), app.top.digest);
  });

  it("Harbor sends only the first tag: for a Harbor source the artifact's other tags are asked for and copied too", async () => {
    const res = await webhook(harborPayload('PUSH_ARTIFACT', harbor.host, 'library/app', app.top.digest, 'latest', 1_700_000_100));
    const { executions } = (await res.json()) as { executions: string[] };
    assert.equal((await finished(executions[0]!)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'fromharbor/app', '1.0'), app.top.digest);
    assert.equal(await manifestDigest(dst.url, 'fromharbor/app', 'latest'), app.top.digest);
  });

  it("an event-based rule with a label filter: the artifact's labels are asked of Harbor before matching", async () => {
    const labelledRun = async (occurAt: number) => {
      const res = await webhook(harborPayload('PUSH_ARTIFACT', harbor.host, 'other/app', app.top.digest, '1.0', occurAt));
      const { executions } = (await res.json()) as { executions: string[] };
      for (const id of executions) {
        const e = await finished(id);
        if (e.rule === 'labelled') return e;
      }
      throw new Error(`no execution of rule labelled among ${executions.join(', ')}`);
    };
    harbor.labels.set(app.top.digest, ['approved', 'scanned']);
    const approved = await labelledRun(1_700_000_150);
    assert.deepEqual([approved.status, approved.counts.total, approved.counts.succeed], ['Succeed', 1, 1]);
    assert.equal(await manifestDigest(dst.url, 'labelled/app', '1.0'), app.top.digest);
    // Without the label, the same push is left out by the rule (no task).
    harbor.labels.set(app.top.digest, ['scanned']);
    const unlabelled = await labelledRun(1_700_000_160);
    assert.deepEqual([unlabelled.status, unlabelled.counts.total], ['Succeed', 0]);
    harbor.labels.delete(app.top.digest);
  });

  it('the same delivery twice (Harbor retries after 3 s) makes one execution', async () => {
    const payload = harborPayload('PUSH_ARTIFACT', src.host, 'library/app', app.top.digest, 'latest', 1_700_000_200);
    const first = (await (await webhook(payload)).json()) as { executions: string[] };
    const before = await executionCount();
    const again = await webhook(payload);
    assert.equal(again.status, 202);
    assert.deepEqual(((await again.json()) as { executions: string[] }).executions, first.executions);
    assert.equal(await executionCount(), before);
    await finished(first.executions[0]!);
  });

  it('two tags of one digest pushed within the same second (occur_at) are two deliveries: both tags replicate', async () => {
    // CI pushes :v1 then :latest of one build: Harbor stamps both events with the same second.
    await pushLayout(app, `${src.host}/library/app:ci-v1`);
    await pushLayout(app, `${src.host}/library/app:ci-latest`);
    const v1 = await webhook(harborPayload('PUSH_ARTIFACT', src.host, 'library/app', app.top.digest, 'ci-v1', 1_700_000_250));
    const latest = await webhook(harborPayload('PUSH_ARTIFACT', src.host, 'library/app', app.top.digest, 'ci-latest', 1_700_000_250));
    assert.equal(v1.status, 202);
    assert.equal(latest.status, 202, 'not answered as a duplicate');
    const [a, b] = [((await v1.json()) as { executions: string[] }).executions, ((await latest.json()) as { executions: string[] }).executions];
    assert.notDeepEqual(a, b);
    assert.equal((await finished(a[0]!)).status, 'Succeed');
    assert.equal((await finished(b[0]!)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'pushed/app', 'ci-v1'), app.top.digest);
    assert.equal(await manifestDigest(dst.url, 'pushed/app', 'ci-latest'), app.top.digest);
  });

  it('DELETE_ARTIFACT with replicate_deletion removes it at the destination', async () => {
    await pushLayout(app, `${dst.host}/pushed/doomed:1`);
    const res = await webhook(harborPayload('DELETE_ARTIFACT', src.host, 'library/doomed', app.top.digest, '1', 1_700_000_300));
    const { executions } = (await res.json()) as { executions: string[] };
    assert.equal((await finished(executions[0]!)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'pushed/doomed', '1'), undefined);
    const [task] = (await api(`/executions/${executions[0]}/tasks`)).body.items;
    assert.equal(task.operation, 'deletion');
  });

  it('rejected requests record nothing: bad secret 401, not JSON 415/400, oversize 413, bad payload 400', async () => {
    const before = await executionCount();
    const push = harborPayload('PUSH_ARTIFACT', src.host, 'library/app', app.top.digest, '1.0', 1_700_000_400);
    assert.equal((await webhook(push, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await webhook(push, { authorization: '' })).status, 401);
    assert.equal((await webhook(JSON.stringify(push), { 'content-type': 'text/plain' })).status, 415);
    assert.equal((await webhook('{"type": "PUSH_ARTIFACT",')).status, 400);
    assert.equal((await webhook({ type: 'PUSH_ARTIFACT', occur_at: 1, event_data: { resources: [] } })).status, 400);
    const big413 = await webhook(JSON.stringify({ ...push, padding: 'x'.repeat(1024 * 1024) }));
    assert.equal(big413.status, 413);
    const invalid = await webhook({ ...push, event_data: { ...push.event_data, repository: { repo_full_name: 'UPPER/case' } } });
    assert.equal(invalid.status, 400);
    assert.match(((await invalid.json()) as { error: { message: string } }).error.message, /event_data\.repository\.repo_full_name/);
    // Harbor sends one resource per event: a delivery naming thousands is refused before any work.
    const many = { ...push, event_data: { ...push.event_data, resources: Array.from({ length: 101 }, () => push.event_data.resources[0]!) } };
    const tooMany = await webhook(many);
    assert.equal(tooMany.status, 400);
    assert.match(((await tooMany.json()) as { error: { message: string } }).error.message, /event_data\.resources: at most 100 resources per delivery/);
    const badTag = await webhook({ ...push, event_data: { ...push.event_data, resources: [{ ...push.event_data.resources[0]!, tag: '../../x' }] } });
    assert.equal(badTag.status, 400);
    assert.match(((await badTag.json()) as { error: { message: string } }).error.message, /event_data\.resources\[0\]\.tag: must be a tag/);
    const scan = await webhook({ type: 'SCANNING_COMPLETED', occur_at: 1, event_data: {} });
    assert.equal(scan.status, 200, 'other event types are acknowledged and ignored');
    const nomatch = await webhook(harborPayload('PUSH_ARTIFACT', src.host, 'other/app', app.top.digest, '1.0', 1_700_000_500));
    assert.equal(nomatch.status, 200);
    assert.deepEqual(await nomatch.json(), { executions: [] });
    assert.equal(await executionCount(), before, 'no execution recorded');
  });

  it('a schedule fires on the injected clock (trigger scheduled); runs missed while down are not replayed', async () => {
    const [next] = server.scheduler.upcoming();
    assert.equal(next?.rule, 'nightly');
    assert.equal(next?.at.toISOString(), '2026-11-23T02:00:00.000Z');
    const before = await executionCount();
    clock.advance(60_000); // 02:00
    let list: Array<{ id: string; trigger: string }> = [];
    for (let i = 0; i < 100 && list.length === 0; i++) {
      list = (await api('/executions?rule=nightly')).body.items;
      if (list.length === 0) await sleep(20);
    }
    assert.equal(list.length, 1);
    assert.equal(list[0]!.trigger, 'scheduled');
    assert.equal((await finished(list[0]!.id)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'nightly/app', '1.0'), app.top.digest);
    clock.advance(3 * 24 * 3600_000); // three days later, one tick: one run, not three
    await sleep(300);
    assert.equal((await api('/executions?rule=nightly')).body.items.length, 2);
    assert.equal(await executionCount(), before + 2);
  });

  it('stop during a large blob: Stopped, the upload cancelled, no manifest at the destination', async () => {
    srcProxy.add({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'throttle', bytesPerSecond: 1024 * 1024 }, times: 10 });
    const created = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'big' }) });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    for (let i = 0; i < 200; i++) {
      const running = (await api(`/executions/${id}/tasks?status=Running`)).body.items;
      if (running.length > 0) break;
      await sleep(25);
    }
    await sleep(300); // bytes are flowing
    const stopped = await api(`/executions/${id}/stop`, { method: 'POST' });
    assert.equal(stopped.status, 200);
    const e = await finished(id);
    assert.equal(e.status, 'Stopped');
    assert.equal(await manifestDigest(dst.url, 'big/blob', '1'), undefined);
  });

  it('management API: token required, config-file entries read-only, API entries validated, ping, OpenAPI', async () => {
    assert.equal((await fetch(`${server.url}/api/v1/executions`)).status, 401);
    assert.equal((await fetch(`${server.url}/api/v1/executions`, { headers: { authorization: 'Bearer nope' } })).status, 401);
    const doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/executions/{id}/stop'] && doc.paths['/registries/{name}/ping']);

    const regs = (await api('/registries')).body.items as Array<{ name: string; origin: string }>;
    assert.deepEqual(regs.map((r) => [r.name, r.origin]), [['hq', 'file'], ['slow', 'file'], ['harbor', 'file'], ['branch', 'file']]);
    assert.equal((await api('/registries/hq', { method: 'DELETE' })).status, 403);
    const bad = await api('/registries', { method: 'POST', body: JSON.stringify({ name: 'x', type: 'harbour', url: 'http://x' }) });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^type: Invalid option/);
    const created = await api('/registries', { method: 'POST', body: JSON.stringify({ name: 'dr', type: 'docker-registry', url: `http://${dst.host}` }) });
    assert.equal(created.status, 201);
    assert.equal((await api('/registries', { method: 'POST', body: JSON.stringify({ name: 'dr', type: 'docker-registry', url: `http://${dst.host}` }) })).status, 409);
    assert.deepEqual((await api('/registries/dr/ping', { method: 'POST' })).body, { ok: true, status: 200, code: null });
    const rule = await api('/rules', { method: 'POST', body: JSON.stringify({ name: 'api-rule', src_registry: 'hq', dest_registry: 'dr', dest_namespace: 'viaapi', filters: [{ type: 'name', value: 'library/app' }] }) });
    assert.equal(rule.status, 201);
    assert.equal((await api('/registries/dr', { method: 'DELETE' })).status, 400, 'a registry a rule uses cannot go');
    const run = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'api-rule' }) });
    assert.equal((await finished(run.body.id)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'viaapi/app', 'latest'), app.top.digest);
    assert.equal((await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'nope' }) })).status, 404);
    assert.equal((await api('/executions', { method: 'POST', body: '{"rule": 1}' })).status, 400);
    const failedOnly = (await api('/executions?status=Failed')).body.items as unknown[];
    assert.ok(Array.isArray(failedOnly));
    assert.equal((await api('/executions?status=Bogus')).status, 400);
    const page = await api('/executions?limit=1');
    assert.equal(page.body.items.length, 1);
    assert.equal(typeof page.body.next_cursor, 'string');
    const next = await api(`/executions?limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}`);
    assert.equal(next.status, 200);
    assert.notEqual(next.body.items[0].id, page.body.items[0].id);
    const foreign = await api(`/executions?rule=api-rule&limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}`);
    assert.deepEqual([foreign.status, foreign.body.error.code], [400, 'INVALID_CURSOR'], 'a cursor of another listing');
    assert.deepEqual((await api(`/executions/${run.body.id}/tasks?cursor=garbage`)).status, 400);
    assert.equal((await api('/rules/api-rule', { method: 'DELETE' })).status, 204);
    assert.equal((await api('/registries/dr', { method: 'DELETE' })).status, 204);
  });

  it('executions and tasks read a running serve through the API (--server)', async () => {
    const r = await runCli(['executions', 'list', '--server', server.url, '--json'], { env: { HARBOR_REPLICATOR_TOKEN: TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Array<{ id: string }>;
    assert.ok(list.length >= 5);
    const t = await runCli(['tasks', list.at(-1)!.id, '--server', server.url], { env: { HARBOR_REPLICATOR_TOKEN: TOKEN } });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^ID\s+OPERATION\s+STATUS/);
    const noToken = await runCli(['executions', 'list', '--server', server.url], { env: { HARBOR_REPLICATOR_TOKEN: undefined } });
    assert.equal(noToken.code, 2);
  });

  it('health and Prometheus metrics (webhooks by result, tasks and executions by status, bytes)', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^harbor_replicator_webhook_requests_total\{result="accepted"\} \d+$/m);
    assert.match(text, /^harbor_replicator_webhook_requests_total\{result="unauthorized"\} 2$/m);
    assert.match(text, /^harbor_replicator_tasks_total\{status="Success"\} \d+$/m);
    assert.match(text, /^harbor_replicator_executions_total\{status="Stopped"\} 1$/m);
    assert.match(text, /^harbor_replicator_bytes_copied_total [1-9]\d*$/m);
  });
});

describe('serve as a process', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let layouts: Layout[];
  let dir: string;
  let config: string;
  let port: number;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    layouts = await Promise.all(Array.from({ length: 6 }, () => imageLayout([{ size: 1024 * 1024 }])));
    for (const [i, l] of layouts.entries()) await pushLayout(l, `${src.host}/team/app${i}:1`);
    proxy = await startFaultProxy(src.host);
    dir = await mkdtemp(join(tmpdir(), 'hr-serve-proc-'));
    config = join(dir, 'replicator.yaml');
    port = await freePort();
    await writeFile(
      config,
      `registries:
  - {name: hq, type: docker-registry, url: "http://${proxy.host}"}
  - {name: branch, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: all, src_registry: hq, dest_registry: branch, dest_namespace: copy, concurrency: 2, filters: [{type: name, value: "team/*"}]}
  - {name: ev, src_registry: hq, dest_registry: branch, trigger: {type: event_based}}
api: {token: {env: API_TOKEN}}
webhook: {auth_header: {env: WEBHOOK_AUTH}}
`,
    );
  });
  after(async () => {
    await Promise.all([proxy?.stop(), src?.stop(), dst?.stop()]);
  });

  const env = { API_TOKEN: TOKEN, WEBHOOK_AUTH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  let logs = '';
  const start = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'state')], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
      } catch {
        // not yet
      }
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}`);
      await sleep(50);
    }
    throw new Error('serve did not start');
  };
  const api = async (path: string, init: RequestInit = {}) =>
    (await (await fetch(`http://127.0.0.1:${port}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } })).json()) as any;

  it('SIGKILL mid-execution, then a restart: the execution completes with every image correct', async () => {
    proxy.add({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'throttle', bytesPerSecond: 2 * 1024 * 1024 }, times: 1000 });
    let child = await start();
    const { id } = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'all' }) });
    for (let i = 0; i < 400; i++) {
      const e = await api(`/executions/${id}`);
      if (e.counts.succeed >= 1 && e.counts.pending + e.counts.running > 0) break;
      await sleep(25);
    }
    child.kill('SIGKILL'); // the node process itself, not a wrapper
    await new Promise((r) => child.once('exit', r));
    child = await start();
    try {
      let e;
      for (let i = 0; i < 600; i++) {
        e = await api(`/executions/${id}`);
        if (e.status !== 'InProgress') break;
        await sleep(50);
      }
      assert.equal(e.status, 'Succeed', `${JSON.stringify(e)}\n${logs.split('\n').filter((l) => !l.includes('"message":"request"')).slice(-60).join('\n')}`);
      assert.equal(e.counts.total, 6);
      for (const [i, l] of layouts.entries()) assert.equal(await manifestDigest(dst.url, `copy/app${i}`, '1'), l.top.digest, `app${i}`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('SIGTERM: stops accepting and exits within a bounded time', async () => {
    const child = await start();
    const started = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10_000, `exited after ${Date.now() - started} ms`);
  });

  it('refuses to start without an API token, or without a webhook secret for an event-based rule', async () => {
    const noToken = join(dir, 'no-token.yaml');
    await writeFile(noToken, `registries: [{name: a, type: docker-registry, url: "http://${dst.host}"}]\nrules: [{name: e, src_registry: a, dest_registry: a, trigger: {type: event_based}}]\n`);
    const r = await runCli(['serve', '--config', noToken, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'x')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /api\.token: the management API needs a token/);
    assert.match(r.stderr, /webhook\.auth_header: rule "e" is event-based/);
    void stopProcess;
  });
});
