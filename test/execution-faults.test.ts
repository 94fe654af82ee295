// The faults behind "every execution ends", each reproduced end to end against real registries:
// a plan job that cannot be queued (503, then a fresh execution on retry, for the webhook and the
// API), a retry whose message receipt went stale, and a worker whose lease was taken over.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedStore, type EmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import { MemoryQueue } from '../shared/adapters/local/memory-queue.js';
import type { PlanJob, TaskMessage } from '../shared/executions/messages.js';
import type { Execution } from '../shared/executions/model.js';
import { ReplicationService } from '../shared/executions/service.js';
import { processTask, type WorkerEvent } from '../shared/executions/worker.js';
import { createApp } from '../shared/http/app.js';
import { noCounters, silentLog } from '../shared/observability/telemetry.js';
import type { Queue, Received } from '../shared/executions/ports.js';
import { HostStates } from '../shared/registry/backoff.js';
import { ConfigView } from '../shared/rules/config-view.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const FAST = { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 100 };
const WEBHOOK_AUTH = 'Bearer faults-webhook';
const TOKEN = 'faults-token';

/** A queue whose next `failNext` sends throw, as SQS does when it is unreachable. */
class FlakyQueue<T> implements Queue<T> {
  failNext = 0;
  get size(): number {
    return this.inner.size;
  }
  constructor(readonly inner: MemoryQueue<T>) {}
  async send(messages: T[], delayMs?: number): Promise<void> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw Object.assign(new Error('the queue is unreachable'), { name: 'QueueUnavailable' });
    }
    return this.inner.send(messages, delayMs);
  }
  receive(max: number, waitMs: number, signal?: AbortSignal): Promise<Array<Received<T>>> {
    return this.inner.receive(max, waitMs, signal);
  }
  ack(receipt: string): Promise<void> {
    return this.inner.ack(receipt);
  }
  retry(receipt: string, delayMs: number): Promise<void> {
    return this.inner.retry(receipt, delayMs);
  }
  extend(receipt: string, visibilityMs: number): Promise<void> {
    return this.inner.extend(receipt, visibilityMs);
  }
}

function harborPush(host: string, repository: string, digest: string, tag: string, occurAt: number) {
  return {
    type: 'PUSH_ARTIFACT',
    occur_at: occurAt,
    operator: 'ci',
    event_data: {
      resources: [{ digest, tag, resource_url: `${host}/${repository}:${tag}` }],
      repository: { name: repository.split('/').pop(), namespace: repository.split('/')[0], repo_full_name: repository, repo_type: 'private' },
    },
  };
}

describe('execution faults, end to end', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let image: Layout;
  let big: Layout;
  let embedded: EmbeddedStore;
  let service: ReplicationService;
  let planQueue: FlakyQueue<PlanJob>;
  let app: ReturnType<typeof createApp>;
  let config: ReturnType<typeof parseConfig>;
  let clients: RegistryClients;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [image, big] = await Promise.all([imageLayout([{ size: 4000 }]), imageLayout([{ size: 3 * 1024 * 1024 }])]);
    await pushLayout(image, `${src.host}/library/app:1`);
    await pushLayout(big, `${src.host}/large/app:1`);
    srcProxy = await startFaultProxy(src.host);
    embedded = await openEmbeddedStore(join(await mkdtemp(join(tmpdir(), 'hr-exec-faults-')), 'state'));
    config = parseConfig(
      `registries:
  - {name: src, type: docker-registry, url: "http://${srcProxy.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: on-push, src_registry: src, dest_registry: dst, dest_namespace: pushed, trigger: {type: event_based}, filters: [{type: name, value: "library/**"}]}
  - {name: manual, src_registry: src, dest_registry: dst, dest_namespace: manual, filters: [{type: name, value: "library/**"}]}
  - {name: large, src_registry: src, dest_registry: dst, dest_namespace: large, filters: [{type: name, value: "large/**"}]}
`,
      'faults.yaml',
    );
    const view = new ConfigView(config, embedded.service);
    clients = new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) });
    planQueue = new FlakyQueue(new MemoryQueue<PlanJob>());
    service = new ReplicationService({
      store: embedded.store,
      deliveries: embedded.service,
      config: view,
      clients,
      secrets: {},
      log: silentLog,
      counters: noCounters,
      // The plan queue is the flaky one: the service asks for it second.
      newQueue: (() => {
        let n = 0;
        return <T>(o: { visibilityTimeoutMs: number; highWater: number }) => (n++ === 1 ? (planQueue as unknown as FlakyQueue<T>) : new MemoryQueue<T>(o));
      })(),
    });
    await service.start();
    app = createApp({ service, store: embedded.store, config: view, clients, log: silentLog, counters: noCounters, webhookAuth: WEBHOOK_AUTH, auth: { bearer: TOKEN } });
  });
  after(async () => {
    await service?.close(0);
    await embedded?.close();
    await Promise.all([srcProxy?.stop(), src?.stop(), dst?.stop()]);
  });

  const finished = async (id: string): Promise<Execution> => {
    for (let i = 0; i < 400; i++) {
      const e = await embedded.store.getExecution(id);
      if (e && e.status !== 'InProgress') return e;
      await sleep(50);
    }
    throw new Error(`execution ${id} still in progress`);
  };

  it('a webhook whose plan job cannot be queued: 503, the execution Failed "enqueue failed", and Harbor\'s retry makes a fresh one that replicates', async () => {
    const body = JSON.stringify(harborPush(srcProxy.host, 'library/app', image.top.digest, '1', 1_700_000_001));
    const deliver = () => app.request('/webhooks/harbor', { method: 'POST', headers: { authorization: WEBHOOK_AUTH, 'content-type': 'application/json' }, body });
    planQueue.failNext = 1;
    const refused = await deliver();
    assert.equal(refused.status, 503);
    const failed = ((await refused.json()) as { execution: Execution }).execution;
    assert.equal(failed.status, 'Failed');
    assert.match(failed.statusText ?? '', /^enqueue failed: QueueUnavailable/);
    // Harbor retries the same delivery: not a duplicate (the claim was released), a fresh execution.
    const retried = await deliver();
    assert.equal(retried.status, 202);
    const [fresh] = ((await retried.json()) as { executions: string[] }).executions;
    assert.ok(fresh && fresh !== failed.id);
    assert.equal((await finished(fresh)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'pushed/app', '1'), image.top.digest);
    assert.equal((await embedded.store.getExecution(failed.id))?.status, 'Failed', 'the failed one stays as it was');
    // And now it is a duplicate: answered with the execution that replicated it.
    const again = await deliver();
    assert.deepEqual(((await again.json()) as { executions: string[] }).executions, [fresh]);
  });

  it('POST /api/v1/executions whose plan job cannot be queued: 503 with the Failed execution; asked again, it runs', async () => {
    const post = () =>
      app.request('/api/v1/executions', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ rule: 'manual' }) });
    planQueue.failNext = 1;
    const refused = await post();
    assert.equal(refused.status, 503);
    const body = (await refused.json()) as { error: { code: string }; execution: Execution };
    assert.equal(body.error.code, 'ENQUEUE_FAILED');
    assert.equal(body.execution.status, 'Failed');
    assert.deepEqual(await embedded.store.activeExecutions('manual'), [], 'nothing left open');
    const ok = await post();
    assert.equal(ok.status, 201);
    assert.equal((await finished(((await ok.json()) as Execution).id)).status, 'Succeed');
  });

  it("a retry after the message's receipt went stale still runs again: the retry is a fresh message", async () => {
    // Clients of its own: shared ones answer a manifest read by an earlier test from memory, and the 503 would never be met.
    const runtime = await ruleRuntime(config, 'manual', new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
    const e = await embedded.store.createExecution({ rule: 'manual', trigger: 'manual' });
    await embedded.store.addTasks(e.id, 1, [
      { operation: 'copy', source: { registry: 'src', repository: 'library/app', tags: ['1'] }, destination: { registry: 'dst', repository: 'stale/app', tags: ['1'] }, digest: image.top.digest },
    ]);
    await embedded.store.finishPlanning(e.id, 1);
    const queue = new MemoryQueue<TaskMessage>();
    await queue.send([{ executionId: e.id, taskId: 1 }]);
    const [msg] = await queue.receive(1, 0);
    // The message was delivered again meanwhile and acknowledged by the other worker: this receipt is stale.
    await queue.ack(msg!.receipt);
    // Its first run fails in a way that may pass (the source answers 503 once).
    srcProxy.add({ method: 'GET', path: /\/v2\/library\/app\/manifests\//, fault: { kind: 'status', status: 503 } });
    const deps = { store: embedded.store, taskQueue: queue, runtime: async () => runtime, retryDelayMs: () => 10 };
    await processTask(msg!, deps);
    assert.equal((await embedded.store.getTask(e.id, 1))?.status, 'Pending', 'put back for a retry');
    const [again] = await queue.receive(1, 2000);
    assert.ok(again, 'the retry is a message of its own, whatever happened to the old receipt');
    await processTask(again, deps);
    const t = await embedded.store.getTask(e.id, 1);
    assert.deepEqual([t?.status, t?.attempts], ['Success', 2]);
    assert.equal(await manifestDigest(dst.url, 'stale/app', '1'), image.top.digest);
  });

  it('a worker whose lease lapsed is taken over: the new owner finishes, the old one stops at its next heartbeat and writes nothing', async () => {
    const runtime = await ruleRuntime(config, 'large', clients, { secrets: {} });
    const e = await embedded.store.createExecution({ rule: 'large', trigger: 'manual' });
    await embedded.store.addTasks(e.id, 1, [
      { operation: 'copy', source: { registry: 'src', repository: 'large/app', tags: ['1'] }, destination: { registry: 'dst', repository: 'lease/app', tags: ['1'] }, digest: big.top.digest },
    ]);
    await embedded.store.finishPlanning(e.id, 1);
    // The first worker's copy is slow (its blob at 1 MiB/s), and its lease short: it lapses before its first heartbeat.
    const layer = big.blobs.find((b) => b.size > 1024 * 1024)!.digest;
    srcProxy.add({ method: 'GET', path: new RegExp(`/v2/large/app/blobs/${layer}`), fault: { kind: 'throttle', bytesPerSecond: 1024 * 1024 } });
    const queue = new MemoryQueue<TaskMessage>();
    await queue.send([{ executionId: e.id, taskId: 1 }, { executionId: e.id, taskId: 1 }]);
    const [first, second] = await queue.receive(2, 0);
    const events: Array<{ worker: string; e: WorkerEvent }> = [];
    const worker = (name: string, leaseMs: number) => ({
      store: embedded.store,
      taskQueue: queue,
      runtime: async () => runtime,
      leaseMs,
      onEvent: (ev: WorkerEvent) => events.push({ worker: name, e: ev }),
    });
    const slow = processTask(first!, worker('slow', 200));
    await sleep(400); // its lease has lapsed
    await processTask(second!, worker('new', 60_000));
    await slow;
    const t = await embedded.store.getTask(e.id, 1);
    assert.equal(t?.status, 'Success');
    assert.equal(t?.attempts, 2, 'the takeover was a second run');
    assert.ok(events.some((x) => x.worker === 'slow' && x.e.kind === 'lease-lost'), 'the old owner learnt it had lost the lease');
    assert.ok(!events.some((x) => x.worker === 'slow' && x.e.kind === 'task-end'), 'and ended nothing');
    assert.equal(await manifestDigest(dst.url, 'lease/app', '1'), big.top.digest);
    assert.equal((await embedded.store.settleExecution(e.id))?.status, 'Succeed');
  });
});
