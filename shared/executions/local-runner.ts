import { setMaxListeners } from 'node:events';
import { BlobLocations } from '../copy/blob-locations.js';
import { noCounters, silentLog, type Log } from '../observability/telemetry.js';
import type { DeliveryLog, LocalQueueFactory, TaskStore } from './ports.js';
import type { LoadedConfig } from '../rules/load-config.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { ExecutionFrontdoor } from './frontdoor.js';
import type { PlanJob, TaskMessage } from './messages.js';
import type { Execution, Trigger } from './model.js';
import { failPlanning, runPlanJob } from './plan-job.js';
import { PlannedDestinations } from './planned-destinations.js';
import type { PlanSummary } from './planner.js';
import { processTask, type WorkerEvent } from './worker.js';

/** Progress of a local run. */
export type RunEvent = { kind: 'execution'; execution: Execution } | { kind: 'planned'; summary: PlanSummary; done: boolean } | WorkerEvent;

export { ACTIVE_REASON } from './frontdoor.js';

/** `run` takes no webhooks: a delivery log that is never asked. */
const noDeliveries: DeliveryLog = {
  claimDelivery: async () => true,
  recordDelivery: async () => {},
  deliveryExecutions: async () => [],
  releaseDelivery: async () => {},
};

/**
 * Runs one execution of a rule to completion in this process, through the same steps as `serve`
 * and the Lambdas: the front door (single-active check, the execution, its plan job), the plan
 * job (streaming tasks into the task queue), and `concurrency` workers over in-process queues;
 * state in the store. `signal` stops it (pending tasks become Stopped, running copies stop at
 * their next chunk).
 */
export async function runExecution(opts: {
  store: TaskStore;
  /** Makes the in-process queues (the host's). */
  newQueue: LocalQueueFactory;
  config: LoadedConfig;
  runtime: RuleRuntime;
  trigger: Trigger;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: RunEvent) => void) | undefined;
  log?: Log;
  maxAttempts?: number;
  retryDelayMs?: (attempt: number) => number;
}): Promise<Execution> {
  const { store, runtime } = opts;
  const rule = runtime.rule;
  const log = opts.log ?? silentLog;
  const concurrency = rule.concurrency;
  const planQueue = opts.newQueue<PlanJob>({ highWater: 10, visibilityTimeoutMs: 10 * 60_000 });
  const taskQueue = opts.newQueue<TaskMessage>({ highWater: Math.max(64, concurrency * 8), visibilityTimeoutMs: 10 * 60_000 });
  const frontdoor = new ExecutionFrontdoor({ store, deliveries: noDeliveries, config: () => opts.config, planQueue, log, counters: noCounters });

  const execution = await frontdoor.runRule(rule.name, opts.trigger);
  opts.onEvent?.({ kind: 'execution', execution });
  if (execution.status !== 'InProgress') return execution; // a single-active rule already running

  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // every request of every task listens to it
  const onStop = () => {
    stop.abort();
    void frontdoor.stopExecution(execution.id).catch(() => {});
  };
  if (opts.signal?.aborted) onStop();
  opts.signal?.addEventListener('abort', onStop, { once: true });

  let planningDone = false;
  const planned = new AbortController(); // wakes idle workers when planning ends
  setMaxListeners(0, planned.signal);
  let last: PlanSummary = { total: 0, queued: 0, inSync: 0, excluded: 0, errors: 0 };
  // The planner's destination HEADs, handed to the workers: a queued copy does not ask again.
  const seenByPlanner = new PlannedDestinations();
  const planning = (async () => {
    try {
      const [job] = await planQueue.receive(1, 0);
      if (!job) return;
      try {
        await runPlanJob(job.body, {
          store,
          taskQueue,
          runtime: async () => runtime,
          log,
          signal: stop.signal,
          planned: seenByPlanner,
          onPlanned: (s) => {
            last = s;
            opts.onEvent?.({ kind: 'planned', summary: s, done: false });
          },
        });
        opts.onEvent?.({ kind: 'planned', summary: last, done: true });
      } catch (err) {
        await failPlanning(store, job.body, err, log);
      }
      await planQueue.ack(job.receipt);
    } finally {
      planningDone = true;
      planned.abort();
    }
  })();

  const deps = {
    store,
    taskQueue,
    runtime: async () => runtime,
    locations: new BlobLocations(),
    planned: seenByPlanner,
    stopSignal: () => stop.signal,
    ruleOf: async () => rule.name,
    settleEach: false, // nothing else writes this execution: settle once, at the end
    onEvent: opts.onEvent,
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
  };
  const worker = async () => {
    for (;;) {
      if (planningDone && taskQueue.size === 0) return;
      const got = await taskQueue.receive(1, 1000, planningDone ? undefined : planned.signal);
      for (const msg of got) await processTask(msg, deps);
    }
  };
  await Promise.all([planning, ...Array.from({ length: concurrency }, worker)]);
  opts.signal?.removeEventListener('abort', onStop);
  const final = (await store.settleExecution(execution.id)) ?? execution;
  opts.onEvent?.({ kind: 'execution', execution: final });
  return final;
}
