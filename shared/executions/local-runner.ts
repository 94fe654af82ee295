import { setMaxListeners } from 'node:events';
import { MemoryQueue } from '../adapters/memory-queue.js';
import { BlobLocations } from '../copy/blob-locations.js';
import { describeError } from '../errors.js';
import type { TaskStore } from '../ports.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import type { Execution, Trigger } from './model.js';
import type { TaskMessage } from './messages.js';
import { planExecution, type PlanSummary } from './planner.js';
import { processTask, type WorkerEvent } from './worker.js';

/** Progress of a local run. */
export type RunEvent = { kind: 'execution'; execution: Execution } | { kind: 'planned'; summary: PlanSummary; done: boolean } | WorkerEvent;

export { ACTIVE_REASON } from './frontdoor.js';
import { ACTIVE_REASON } from './frontdoor.js';

/**
 * Runs one execution of a rule to completion in this process: planner and a pool of
 * `concurrency` workers over an in-process queue, state in the store. `signal` stops it (pending
 * tasks become Stopped, running copies stop at their next chunk).
 */
export async function runExecution(opts: {
  store: TaskStore;
  runtime: RuleRuntime;
  trigger: Trigger;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: RunEvent) => void) | undefined;
  maxAttempts?: number;
  retryDelayMs?: (attempt: number) => number;
}): Promise<Execution> {
  const { store, runtime } = opts;
  const rule = runtime.rule;
  if (rule.single_active_replication && (await store.activeExecutions(rule.name)).length > 0) {
    const skipped = await store.createFinishedExecution({ rule: rule.name, trigger: opts.trigger, status: 'Failed', statusText: ACTIVE_REASON });
    opts.onEvent?.({ kind: 'execution', execution: skipped });
    return skipped;
  }
  const execution = await store.createExecution({ rule: rule.name, trigger: opts.trigger });
  opts.onEvent?.({ kind: 'execution', execution });

  const concurrency = rule.concurrency;
  const queue = new MemoryQueue<TaskMessage>({ highWater: Math.max(64, concurrency * 8), visibilityTimeoutMs: 10 * 60_000 });
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // every request of every task listens to it
  const onStop = () => {
    stop.abort();
    void store.requestStop(execution.id).catch(() => {});
  };
  if (opts.signal?.aborted) onStop();
  opts.signal?.addEventListener('abort', onStop, { once: true });

  let planningDone = false;
  const planned = new AbortController(); // wakes idle workers when planning ends
  setMaxListeners(0, planned.signal);
  const planning = (async () => {
    let total = 0;
    try {
      const summary = await planExecution(execution.id, runtime, { store, taskQueue: queue }, {
        signal: stop.signal,
        onPlanned: (s) => {
          total = s.total;
          opts.onEvent?.({ kind: 'planned', summary: s, done: false });
        },
      });
      total = summary.total;
      await store.finishPlanning(execution.id, total);
      opts.onEvent?.({ kind: 'planned', summary, done: true });
    } catch (err) {
      await store.finishPlanning(execution.id, total, { error: `planning failed: ${describeError(err)}` });
    } finally {
      planningDone = true;
      planned.abort();
    }
  })();

  const deps = {
    store,
    taskQueue: queue,
    runtime: async () => runtime,
    locations: new BlobLocations(),
    stopSignal: () => stop.signal,
    ruleOf: async () => rule.name,
    settleEach: false, // nothing else writes this execution: settle once, at the end
    onEvent: opts.onEvent,
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
  };
  const worker = async () => {
    for (;;) {
      if (planningDone && queue.size === 0) return;
      const got = await queue.receive(1, 1000, planningDone ? undefined : planned.signal);
      for (const msg of got) await processTask(msg, deps);
    }
  };
  await Promise.all([planning, ...Array.from({ length: concurrency }, worker)]);
  opts.signal?.removeEventListener('abort', onStop);
  const final = (await store.settleExecution(execution.id)) ?? execution;
  opts.onEvent?.({ kind: 'execution', execution: final });
  return final;
}
