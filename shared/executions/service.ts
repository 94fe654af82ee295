import { setMaxListeners } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import { MemoryQueue } from '../adapters/memory-queue.js';
import { BlobLocations } from '../copy/blob-locations.js';
import { ReplicatorError } from '../errors.js';
import type { HarborArtifactEvent } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import type { DeliveryLog, TaskStore } from '../ports.js';
import type { ConfigView } from '../rules/config-view.js';
import type { RegistryClients } from '../rules/registry-endpoint.js';
import { ruleRuntime, type RuleRuntime } from '../rules/rule-runtime.js';
import type { SecretSources } from '../rules/secrets.js';
import { ExecutionFrontdoor, type PlanJob } from './frontdoor.js';
import type { Execution, Trigger } from './model.js';
import { runPlanJob } from './plan-job.js';
import type { TaskMessage } from './planner.js';
import { processTask, type WorkerEvent } from './worker.js';
import { recordWorkerEvent } from './worker-log.js';

/** What a service needs. */
export interface ServiceDeps {
  store: TaskStore;
  deliveries: DeliveryLog;
  config: ConfigView;
  clients: RegistryClients;
  secrets: SecretSources;
  log: Log;
  counters: Counters;
  /** Tasks running at once across all rules (each rule also keeps to its `concurrency`). */
  workers?: number;
  planners?: number;
  retryDelayMs?: (attempt: number) => number;
}

/**
 * The replication engine of a long-running process (`serve`): executions from the API, the
 * scheduler and Harbor's webhooks go through one planning queue; tasks through one task queue
 * served by a pool of workers; state in the store. On start it finds executions a crash left
 * open and finishes them; on close it stops taking work and hands running tasks back.
 */
export class ReplicationService {
  private readonly taskQueue = new MemoryQueue<TaskMessage>({ highWater: 10_000, visibilityTimeoutMs: 60 * 60_000 });
  private readonly planQueue = new MemoryQueue<PlanJob>({ highWater: 100_000, visibilityTimeoutMs: 60 * 60_000 });
  private readonly runtimes = new Map<string, Promise<RuleRuntime>>();
  private readonly ruleLimits = new Map<string, LimitFunction>();
  private readonly stops = new Map<string, AbortController>();
  private readonly rules = new Map<string, string>(); // execution id -> rule
  private readonly locations = new BlobLocations();
  /** Aborted at close: loops stop taking work. */
  private readonly accepting = new AbortController();
  /** Aborted when the grace period ends: running copies stop and are handed back. */
  private readonly closing = new AbortController();
  private shuttingDown = false;
  private loops: Array<Promise<void>> = [];

  private readonly frontdoor: ExecutionFrontdoor;

  constructor(private readonly deps: ServiceDeps) {
    setMaxListeners(0, this.closing.signal, this.accepting.signal);
    this.frontdoor = new ExecutionFrontdoor({
      store: deps.store,
      deliveries: deps.deliveries,
      config: () => deps.config.loaded,
      planQueue: this.planQueue,
      log: deps.log,
      counters: deps.counters,
      onCreated: (e) => this.rules.set(e.id, e.rule),
    });
  }

  /** Forgets cached rule wiring (after an API change of registries or rules). */
  invalidate(): void {
    this.runtimes.clear();
  }

  private runtime(rule: string): Promise<RuleRuntime> {
    let rt = this.runtimes.get(rule);
    if (!rt) {
      rt = ruleRuntime(this.deps.config.loaded, rule, this.deps.clients, { secrets: this.deps.secrets });
      rt.catch(() => this.runtimes.delete(rule));
      this.runtimes.set(rule, rt);
    }
    return rt;
  }

  private stopSignal(executionId: string): AbortSignal {
    let c = this.stops.get(executionId);
    if (!c) {
      c = new AbortController();
      setMaxListeners(0, c.signal);
      const parent = this.closing.signal;
      if (parent.aborted) c.abort(parent.reason);
      else parent.addEventListener('abort', () => c!.abort(parent.reason), { once: true });
      this.stops.set(executionId, c);
    }
    return c.signal;
  }

  private async ruleOf(executionId: string): Promise<string | undefined> {
    const known = this.rules.get(executionId);
    if (known) return known;
    const rule = (await this.deps.store.getExecution(executionId))?.rule;
    if (rule) this.rules.set(executionId, rule);
    return rule;
  }

  /** Finishes what a previous process left open, then starts planners and workers. */
  async start(): Promise<void> {
    for (const e of await this.deps.store.activeExecutions()) {
      this.rules.set(e.id, e.rule);
      // Counter moves of the dead process may be lost (tasks are the truth): recount first.
      await this.deps.store.reconcileCounts(e.id);
      if (!e.planned) {
        this.deps.log.info('resuming the planning of an interrupted execution', { execution: e.id, rule: e.rule });
        await this.planQueue.send([{ executionId: e.id, rule: e.rule, resume: true }]);
        continue;
      }
      let queued = 0;
      for (const status of ['Pending', 'Scheduled', 'Running'] as const) {
        let cursor: string | undefined;
        do {
          const page = await this.deps.store.listTasks(e.id, { status, limit: 500, cursor });
          if (status === 'Running') {
            // This process owns the state: a task marked Running belonged to the dead process.
            for (const t of page.items) await this.deps.store.transitionTask(e.id, t.id, ['Running'], 'Pending', { statusText: 'requeued after a restart' });
          }
          await this.taskQueue.send(page.items.map((t) => ({ executionId: e.id, taskId: t.id })));
          queued += page.items.length;
          cursor = page.cursor;
        } while (cursor);
      }
      this.deps.log.info('recovered an open execution', { execution: e.id, rule: e.rule, requeued: queued });
      if (queued === 0) await this.settle(e.id, true);
    }
    const workers = this.deps.workers ?? 16;
    const planners = this.deps.planners ?? 2;
    this.loops = [...Array.from({ length: planners }, () => this.planLoop()), ...Array.from({ length: workers }, () => this.workLoop())];
  }

  private async settle(executionId: string, force = false): Promise<Execution | undefined> {
    const e = await this.deps.store.settleExecution(executionId, { force });
    if (e && e.status !== 'InProgress' && this.rules.delete(executionId)) {
      this.stops.delete(executionId);
      this.deps.counters.executionFinished(e.status);
      this.deps.log.info('execution finished', { execution: e.id, rule: e.rule, status: e.status, counts: e.counts });
    }
    return e;
  }

  // ---- creating executions -------------------------------------------------------------------

  /** Starts an execution of a rule (manual or scheduled); single-active rules skip when busy. */
  runRule(ruleName: string, trigger: Trigger): Promise<Execution> {
    return this.frontdoor.runRule(ruleName, trigger);
  }

  /** Handles one artifact of a webhook (see ExecutionFrontdoor). */
  handleEvent(event: HarborArtifactEvent): Promise<{ executions: string[]; duplicate: boolean }> {
    return this.frontdoor.handleEvent(event);
  }

  /** Stops an execution: pending tasks become Stopped, running copies stop at their next chunk. */
  async stopExecution(id: string): Promise<Execution | undefined> {
    if (!(await this.deps.store.getExecution(id))) return undefined;
    this.stopSignal(id);
    this.stops.get(id)!.abort(new ReplicatorError('STOPPED', 'stopped by request'));
    await this.frontdoor.stopExecution(id);
    return this.settle(id);
  }

  // ---- planners and workers ------------------------------------------------------------------

  private async planLoop(): Promise<void> {
    while (!this.accepting.signal.aborted) {
      const [job] = await this.planQueue.receive(1, 1000, this.accepting.signal);
      if (!job) continue;
      try {
        await this.plan(job.body);
      } catch (err) {
        const text = err instanceof ReplicatorError ? `${err.code}: ${err.message}` : (err as Error).message;
        this.deps.log.error('planning failed', { execution: job.body.executionId, rule: job.body.rule, error: text });
        await this.deps.store.finishPlanning(job.body.executionId, 0, `planning failed: ${text}`).catch(() => {});
        await this.settle(job.body.executionId);
      }
      await this.planQueue.ack(job.receipt);
    }
  }

  private plan(job: PlanJob): Promise<void> {
    return runPlanJob(job, {
      store: this.deps.store,
      taskQueue: this.taskQueue,
      runtime: (r) => this.runtime(r),
      log: this.deps.log,
      signal: this.stopSignal(job.executionId),
    }).then(async () => void (await this.settle(job.executionId)));
  }

  private async workLoop(): Promise<void> {
    while (!this.accepting.signal.aborted) {
      const [msg] = await this.taskQueue.receive(1, 1000, this.accepting.signal);
      if (!msg) continue;
      const rule = await this.ruleOf(msg.body.executionId);
      if (!rule) {
        await this.taskQueue.ack(msg.receipt);
        continue;
      }
      let limit = this.ruleLimits.get(rule);
      if (!limit) {
        const concurrency = (() => {
          try {
            return this.deps.config.loaded.rule(rule).concurrency;
          } catch {
            return 4;
          }
        })();
        this.ruleLimits.set(rule, (limit = pLimit(concurrency)));
      }
      await limit(() =>
        processTask(msg, {
          store: this.deps.store,
          taskQueue: this.taskQueue,
          runtime: (r) => this.runtime(r),
          locations: this.locations,
          stopSignal: (id) => this.stopSignal(id),
          ruleOf: (id) => this.ruleOf(id),
          shuttingDown: () => this.shuttingDown,
          ...(this.deps.retryDelayMs ? { retryDelayMs: this.deps.retryDelayMs } : {}),
          onEvent: (e) => this.onWorkerEvent(e),
        }),
      ).catch((err: unknown) => this.deps.log.error('task failed unexpectedly', { execution: msg.body.executionId, task: msg.body.taskId, error: String(err) }));
      if (!this.shuttingDown) {
        const e = await this.settle(msg.body.executionId).catch(() => undefined);
        void e;
      }
    }
  }

  private onWorkerEvent(e: WorkerEvent): void {
    recordWorkerEvent(this.deps.log, this.deps.counters, e);
  }

  /**
   * Stops taking work, lets running tasks finish for up to `graceMs`, then aborts them and hands
   * them back (Pending: the next start runs them).
   */
  async close(graceMs = 20_000): Promise<void> {
    this.shuttingDown = true;
    this.accepting.abort(); // idle loops return now; busy ones after their current item
    const all = () => Promise.all(this.loops.map((l) => l.catch(() => {})));
    await Promise.race([all(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.closing.abort(new ReplicatorError('SHUTDOWN', 'shutting down')); // cut what still runs
    await Promise.race([all(), new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}
