// Drift reconcile in `serve`: the one scheduler fires a rule's `reconcile:` on an injected clock
// (trigger reconcile), and GET /api/v1/rules/{name}/drift answers the last reconcile's drift
// (counts, a list bounded at 100, when it was taken); executions listed by trigger; a reconcile
// started through the API.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startServer, type RunningServer } from '../functions/serve/server.js';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { ACCEPT, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const TOKEN = 'drift-api-token';
/** The repository (tests run from dist/test). */
const REPO = fileURLToPath(new URL('../../', import.meta.url));

class FakeClock {
  t = Date.parse('2026-11-23T03:29:00Z');
  timers: Array<{ fn: () => void; at: number }> = [];
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    const entry = { fn, at: this.t + ms };
    this.timers.push(entry);
    return { cancel: () => (this.timers = this.timers.filter((x) => x !== entry)) };
  };
  advance(ms: number) {
    this.t += ms;
    for (const due of this.timers.filter((x) => x.at <= this.t)) {
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
  }
}

/** Tags `repo:from`'s manifest as each of `tags` (manifest PUTs). */
async function tagAll(registryUrl: string, repo: string, from: string, tags: string[]): Promise<void> {
  const got = await request(`${registryUrl}/v2/${repo}/manifests/${from}`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await got.body.arrayBuffer());
  for (const t of tags) {
    const put = await request(`${registryUrl}/v2/${repo}/manifests/${t}`, { method: 'PUT', headers: { 'content-type': String(got.headers['content-type']) }, body });
    await put.body.dump();
    assert.equal(put.statusCode, 201);
  }
}

describe('serve: drift reconcile', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let app: Layout;
  let old: Layout;
  let server: RunningServer;
  const clock = new FakeClock();
  const extras = Array.from({ length: 120 }, (_, i) => `x${i}`);

  before(async () => {
    process.env.DRIFT_API_TOKEN = TOKEN;
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [app, old] = await Promise.all([imageLayout([{ size: 20_000 }]), imageLayout([{ size: 20_000 }])]);
    await pushLayout(app, `${src.host}/library/app:1.0`);
    await tagAll(src.url, 'library/app', '1.0', ['2.0']);
    // The destination: 1.0 there, 2.0 not (a lost webhook), 120 extra tags sharing 1.0's manifest
    // (kept), one extra tag of its own (deleted).
    await pushLayout(app, `${dst.host}/watched/app:1.0`);
    await tagAll(dst.url, 'watched/app', '1.0', extras);
    await pushLayout(old, `${dst.host}/watched/app:old`);
    const dir = await mkdtemp(join(tmpdir(), 'hr-drift-serve-'));
    server = await startServer({
      config: parseConfig(
        `
registries:
  - {name: hq, type: docker-registry, url: "http://${src.host}"}
  - {name: branch, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: watched, src_registry: hq, dest_registry: branch, dest_namespace: watched, replicate_deletion: true, filters: [{type: name, value: library/app}], reconcile: {cron: "30 3 * * *", timezone: UTC}}
  - {name: plain, src_registry: hq, dest_registry: branch, dest_namespace: plain, filters: [{type: name, value: library/app}]}
api: {token: {env: DRIFT_API_TOKEN}}
`,
        'drift-serve.yaml',
      ),
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
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const finished = async (id: string) => {
    for (let i = 0; i < 300; i++) {
      const e = (await api(`/executions/${id}`)).body;
      if (e.status !== 'InProgress') return e;
      await sleep(50);
    }
    throw new Error(`execution ${id} did not finish`);
  };

  it('before any reconcile: 404 NO_RECONCILE; an unknown rule: 404 NOT_FOUND', async () => {
    const none = await api('/rules/watched/drift');
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'NO_RECONCILE');
    const unknown = await api('/rules/nosuch/drift');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'RULE_UNKNOWN');
  });

  it('the scheduler fires the rule\'s reconcile on the injected clock (trigger reconcile); the API answers its drift, the list bounded at 100', async () => {
    assert.deepEqual(
      server.scheduler.upcoming().map((u) => [u.rule, u.trigger, u.at.toISOString()]),
      [['watched', 'reconcile', '2026-11-23T03:30:00.000Z']],
      'one schedule: the reconcile of the one rule that has one',
    );
    assert.equal((await api('/executions?rule=watched')).body.items.length, 0);
    clock.advance(60_000); // 03:30
    let list: Array<{ id: string; trigger: string }> = [];
    for (let i = 0; i < 100 && list.length === 0; i++) {
      list = (await api('/executions?rule=watched')).body.items;
      if (list.length === 0) await sleep(20);
    }
    assert.equal(list.length, 1);
    assert.equal(list[0]!.trigger, 'reconcile');
    const e = await finished(list[0]!.id);
    assert.equal(e.status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'watched/app', '2.0'), app.top.digest, 'the missed tag copied');
    assert.equal(await manifestDigest(dst.url, 'watched/app', 'old'), undefined, 'the extra tag of its own deleted');
    assert.equal(await manifestDigest(dst.url, 'watched/app', 'x119'), app.top.digest, 'extra tags sharing a manifest kept');

    const drift = await api('/rules/watched/drift');
    assert.equal(drift.status, 200);
    assert.equal(drift.body.rule, 'watched');
    assert.equal(drift.body.execution, e.id);
    assert.ok(Date.parse(drift.body.takenAt) > Date.now() - 60_000 && Date.parse(drift.body.takenAt) <= Date.parse(e.endTime), 'taken when its planning ended');
    assert.deepEqual(drift.body.counts, { missing: 1, different: 0, extra: 121, inSync: 1 });
    assert.equal(drift.body.extrasChecked, true);
    assert.equal(drift.body.itemsLimit, 100);
    assert.equal(drift.body.items.length, 100);
    assert.equal(drift.body.truncated, true);
    assert.ok(drift.body.items.some((i: { kind: string; tag: string }) => i.kind === 'missing' && i.tag === '2.0'));

    const reconciles = await api('/executions?trigger=reconcile');
    assert.deepEqual(reconciles.body.items.map((x: { id: string }) => x.id), [e.id]);
    assert.equal((await api('/executions?trigger=manual')).body.items.length, 0);
    const bad = await api('/executions?trigger=sometimes');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_QUERY');
  });

  it('POST /executions {"trigger": "reconcile"} runs one now and its drift replaces the last; "scheduled" is refused', async () => {
    const created = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'watched', trigger: 'reconcile' }) });
    assert.equal(created.status, 201);
    assert.equal(created.body.trigger, 'reconcile');
    assert.equal((await finished(created.body.id)).status, 'Succeed');
    const drift = await api('/rules/watched/drift');
    assert.equal(drift.body.execution, created.body.id);
    assert.deepEqual(drift.body.counts, { missing: 0, different: 0, extra: 120, inSync: 2 });
    assert.ok(drift.body.items.every((i: { kind: string; action: string; reason: string }) => i.kind === 'extra' && i.action === 'keep' && /is also tagged/.test(i.reason)));

    const refused = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'watched', trigger: 'scheduled' }) });
    assert.equal(refused.status, 400);
    const manual = await api('/executions', { method: 'POST', body: JSON.stringify({ rule: 'plain' }) });
    assert.equal(manual.body.trigger, 'manual');
    await finished(manual.body.id);
    assert.equal((await api('/rules/plain/drift')).body.error.code, 'NO_RECONCILE', 'a manual run records no drift');
  });

  it('Prometheus: per rule, the last reconcile\'s drift by kind, and the last execution\'s status; a rule never reconciled has no drift', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^harbor_replicator_drift_artifacts\{rule="watched",kind="missing"\} 0$/m);
    assert.match(text, /^harbor_replicator_drift_artifacts\{rule="watched",kind="different"\} 0$/m);
    assert.match(text, /^harbor_replicator_drift_artifacts\{rule="watched",kind="extra"\} 120$/m, 'the last reconcile, not the first (121)');
    assert.doesNotMatch(text, /harbor_replicator_drift_artifacts\{rule="plain"/);
    assert.match(text, /^harbor_replicator_execution_status\{rule="watched",status="Succeed"\} 1$/m);
    assert.match(text, /^harbor_replicator_execution_status\{rule="plain",status="Succeed"\} 1$/m);
    assert.match(text, /^harbor_replicator_execution_status\{rule="plain",status="Stopped"\} 0$/m);
    assert.match(text, /^harbor_replicator_execution_duration_seconds\{rule="plain"\} \d/m);

    // The README's alert rules and the Grafana dashboard in examples/ ask only for metrics serve has.
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const alerts = /```yaml\n(groups:[\s\S]*?)```/.exec(readme)?.[1] ?? '';
    assert.match(alerts, /alert: HarborReplicationFailed\n\s+expr: harbor_replicator_execution_status\{status="Failed"\} == 1/);
    const dashboard = readFileSync(join(REPO, 'examples', 'grafana-dashboard.json'), 'utf8');
    const exprs = (JSON.parse(dashboard) as { panels: Array<{ targets: Array<{ expr: string }> }> }).panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const used of [alerts, ...exprs].flatMap((e) => [...e.matchAll(/\bharbor_replicator_\w+/g)].map((m) => m[0]))) {
      assert.ok(exposed.has(used.replace(/_total$/, '')) || exposed.has(used), `${used} is not a metric of serve`);
    }
  });
});
