import { setMaxListeners } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import { BlobLocations } from '../copy/blob-locations.js';
import { describeError, ReplicatorError } from '../errors.js';
import type { HarborArtifactEvent } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import type { DeliveryLog, LocalQueueFactory, Queue, TaskStore } from './ports.js';
import type { ConfigView } from '../rules/config-view.js';
import type { RegistryClients } from '../rules/registry-endpoint.js';
import { RuleRuntimes, type RuleRuntime } from '../rules/rule-runtime.js';
import type { SecretSources } from '../rules/secrets.js';
import { ExecutionFrontdoor } from './frontdoor.js';
import type { PlanJob, TaskMessage } from './messages.js';
import type { Execution, Trigger } from './model.js';
import { failPlanning, runPlanJob } from './plan-job.js';
import { systemClock, type SchedulerClock } from './scheduler.js';
import { sweep, SWEEP_INTERVAL_MS, type SweepReport, type SweeperDeps } from './sweeper.js';
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
  /** The sweeper's clock (tests inject one); the system clock by default. */
  clock?: SchedulerClock;
  /** Makes the in-process queues (the host's MemoryQueue; tests wrap it in faults). */
  newQueue: LocalQueueFactory;
  /** Workers' lease on a task (default 10 minutes, renewed every third of it). */
  leaseMs?: number;
}

/**
 * Visibility of a received message (renewed by the worker's heartbeat while it runs): a message
 * not acknowledged within it is delivered again; a Pending task due that long ago and not
 * claimed has lost its message, and the sweeper sends it again.
 */
const TASK_VISIBILITY_MS = 15 * 60_000;
const PLAN_VISIBILITY_MS = 15 * 60_000;

/**
 * The replication engine of a long-running process (`serve`): executions from the API, the
 * scheduler and Harbor's webhooks go through one planning queue; tasks through one task queue
 * served by a pool of workers; state in the store. On start it finds executions a crash left
 * open and finishes them; on close it stops taking work and hands running tasks back.
 */
export class ReplicationService {
  private readonly taskQueue: Queue<TaskMessage>;
  private readonly planQueue: Queue<PlanJob>;
  private readonly clock: SchedulerClock;
  private sweepTimer: { cancel(): void } | undefined;
  private readonly runtimes: RuleRuntimes;
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
    this.clock = deps.clock ?? systemClock;
    this.taskQueue = deps.newQueue<TaskMessage>({ highWater: 10_000, visibilityTimeoutMs: TASK_VISIBILITY_MS });
    this.planQueue = deps.newQueue<PlanJob>({ highWater: 100_000, visibilityTimeoutMs: PLAN_VISIBILITY_MS });
    this.runtimes = new RuleRuntimes(() => deps.config.loaded, deps.clients, { secrets: deps.secrets });
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
    return this.runtimes.get(rule);
  }

  /** A rule's wiring (clients, lister), the one the planners and workers use (a dry run through the API). */
  ruleRuntime(rule: string): Promise<RuleRuntime> {
    return this.runtime(rule);
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

  /** Finishes what a previous process left open, then starts planners, workers and the sweeper. */
  async start(): Promise<void> {
    // This process owns the state alone: the previous one's leases and queued messages are gone.
    const recovered = await sweep(this.sweeperDeps(), { ownerGone: true });
    if (recovered.executions > 0) this.deps.log.info('recovered open executions', { ...recovered });
    const workers = this.deps.workers ?? 16;
    const planners = this.deps.planners ?? 2;
    this.loops = [...Array.from({ length: planners }, () => this.planLoop()), ...Array.from({ length: workers }, () => this.workLoop())];
    this.armSweeper();
  }

  private sweeperDeps(): SweeperDeps {
    return {
      store: this.deps.store,
      taskQueue: this.taskQueue,
      planQueue: this.planQueue,
      log: this.deps.log,
      onRepair: (kind) => this.deps.counters.sweeperRepair(kind),
      now: () => this.clock.now(),
      lostAfterMs: TASK_VISIBILITY_MS,
      planGraceMs: PLAN_VISIBILITY_MS,
    };
  }

  /** Runs the sweeper every SWEEP_INTERVAL_MS on the service's clock. */
  private armSweeper(): void {
    if (this.accepting.signal.aborted) return;
    this.sweepTimer = this.clock.setTimer(() => {
      void sweep(this.sweeperDeps())
        .then((r) => {
          if (Object.values(r.repairs).some((n) => n > 0)) this.deps.log.info('sweeper done', { ...r });
        })
        .catch((err: unknown) => this.deps.log.error('sweeper failed', { error: describeError(err) }))
        .finally(() => this.armSweeper());
    }, SWEEP_INTERVAL_MS);
  }

  /** Runs one sweep now (tests, and the `sweep` of an operator). */
  sweepNow(): Promise<SweepReport> {
    return sweep(this.sweeperDeps());
  }

  private async settle(executionId: string): Promise<Execution | undefined> {
    const e = await this.deps.store.settleExecution(executionId);
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

  /**
   * Runs `step` until the service closes. A step that throws (a store or queue fault) is logged and
   * the loop goes on after a pause: a loop that died would leave its share of the work to the sweeper.
   */
  private async loop(name: string, step: () => Promise<void>): Promise<void> {
    while (!this.accepting.signal.aborted) {
      try {
        await step();
      } catch (err) {
        this.deps.log.error(`${name} loop: step failed`, { error: describeError(err) });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private planLoop(): Promise<void> {
    return this.loop('planner', async () => {
      const [job] = await this.planQueue.receive(1, 1000, this.accepting.signal);
      if (!job) return;
      try {
        await this.plan(job.body);
      } catch (err) {
        // Nothing else plans it locally: a failure is final (the sweeper resumes only a planner that died).
        await failPlanning(this.deps.store, job.body, err, this.deps.log).catch(() => {});
        await this.settle(job.body.executionId).catch(() => undefined);
      }
      await this.planQueue.ack(job.receipt);
    });
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

  private workLoop(): Promise<void> {
    return this.loop('worker', async () => {
      const [msg] = await this.taskQueue.receive(1, 1000, this.accepting.signal);
      if (!msg) return;
      const rule = await this.ruleOf(msg.body.executionId);
      if (!rule) {
        await this.taskQueue.ack(msg.receipt);
        return;
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
          ...(this.deps.leaseMs ? { leaseMs: this.deps.leaseMs } : {}),
          onEvent: (e) => this.onWorkerEvent(e),
        }),
      ).catch((err: unknown) => this.deps.log.error('task failed unexpectedly', { execution: msg.body.executionId, task: msg.body.taskId, error: String(err) }));
      if (!this.shuttingDown) await this.settle(msg.body.executionId).catch(() => undefined);
    });
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
    this.sweepTimer?.cancel();
    const all = () => Promise.all(this.loops.map((l) => l.catch(() => {})));
    await Promise.race([all(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.closing.abort(new ReplicatorError('SHUTDOWN', 'shutting down')); // cut what still runs
    await Promise.race([all(), new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}
