import type { Log } from '../observability/telemetry.js';
import type { Queue, TaskStore } from './ports.js';
import { describeError } from '../errors.js';
import type { Execution, Task } from './model.js';
import type { PlanJob, TaskMessage } from './messages.js';
import { planningRepair, taskMove } from './transitions.js';

/** What the sweeper repaired, by kind (the `harbor_replicator_sweeper_repairs_total{kind}` labels). */
export const REPAIR_KINDS = ['recount', 'requeue', 'lost', 'replan', 'close'] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];

/** How often the sweeper runs, in `serve` and on AWS. */
export const SWEEP_INTERVAL_MS = 5 * 60_000;

export interface SweeperDeps {
  store: TaskStore;
  taskQueue: Pick<Queue<TaskMessage>, 'send'>;
  planQueue: Pick<Queue<PlanJob>, 'send'>;
  log: Log;
  onRepair?: ((kind: RepairKind) => void) | undefined;
  now?: () => number;
  /** A Pending task due this long ago and not claimed has lost its message (the task queue's visibility timeout). */
  lostAfterMs: number;
  /** Runs of a task before a lost one ends Error LOST (the worker's maxAttempts). */
  maxAttempts?: number;
  /** Lost messages of one task sent again before it ends Error LOST. */
  maxRequeues?: number;
  /** A planning whose job was never taken has this long after creation (the execution queue's visibility timeout). */
  planGraceMs: number;
  maxReplans?: number;
}

export interface SweepReport {
  executions: number;
  repairs: Record<RepairKind, number>;
}

/**
 * Repairs what a fault left, so every execution ends: for each open execution (the active
 * index, no scans) it recounts the tasks; resumes a planning whose planner is gone (at most
 * `maxReplans` times, then fails it); requeues Running tasks whose lease expired and Pending
 * tasks whose message was lost (each ends Error LOST when its attempts or requeues are spent);
 * and closes the execution when its tasks are all final. Every repair is one conditional move,
 * so a sweep racing a worker, or another sweep, changes nothing twice.
 *
 * `ownerGone` (the start of a process that owns its state alone, `serve`): every lease and
 * every in-memory message of the previous process is gone, so Running tasks are requeued and
 * Pending ones sent again now, and interrupted plannings resumed, without waiting or counting.
 */
export async function sweep(deps: SweeperDeps, opts: { ownerGone?: boolean } = {}): Promise<SweepReport> {
  const now = deps.now ?? Date.now;
  const report: SweepReport = { executions: 0, repairs: { recount: 0, requeue: 0, lost: 0, replan: 0, close: 0 } };
  const repaired = (kind: RepairKind, execution: Execution, detail: Record<string, unknown> = {}) => {
    report.repairs[kind] += 1;
    deps.onRepair?.(kind);
    deps.log.info('sweeper repair', { kind, execution: execution.id, rule: execution.rule, ...detail });
  };
  for (const e of await deps.store.activeExecutions()) {
    report.executions += 1;
    try {
      await sweepExecution(e, deps, now, !!opts.ownerGone, repaired);
    } catch (err) {
      // One execution's trouble (a throttled table) must not keep the others open.
      deps.log.error('sweeper could not repair an execution', { execution: e.id, rule: e.rule, error: describeError(err) });
    }
  }
  return report;
}

async function sweepExecution(
  e: Execution,
  deps: SweeperDeps,
  now: () => number,
  ownerGone: boolean,
  repaired: (kind: RepairKind, e: Execution, detail?: Record<string, unknown>) => void,
): Promise<void> {
  const { store } = deps;
  const { counts, corrected } = await store.recount(e.id);
  if (corrected && !ownerGone) repaired('recount', e, { counts });

  if (!e.planned) {
    const decision = ownerGone
      ? { kind: e.stopRequested ? ('abandon' as const) : ('replan' as const) }
      : planningRepair({ ...e, replans: e.replans ?? 0, createdAt: Date.parse(e.startTime) }, now(), {
          graceMs: deps.planGraceMs,
          maxReplans: deps.maxReplans ?? 3,
        });
    if (decision.kind === 'replan') {
      const replans = await store.releasePlanning(e.id, { countReplan: !ownerGone });
      await deps.planQueue.send([{ executionId: e.id, rule: e.rule, resume: true }]);
      if (!ownerGone) repaired('replan', e, { replans });
    } else if (decision.kind === 'fail') {
      await store.finishPlanning(e.id, counts.total, { error: decision.statusText });
    } else if (decision.kind === 'abandon') {
      // Stopped while its planner was gone: what was planned ends, nothing more is planned.
      await store.finishPlanning(e.id, counts.total);
    }
  }

  const maxAttempts = deps.maxAttempts ?? 3;
  const maxRequeues = deps.maxRequeues ?? 3;
  // Running tasks whose worker stopped renewing the lease (all of them, when the owner is gone).
  for await (const t of tasksIn(store, e.id, 'Running')) {
    if (!ownerGone && (t.leaseUntil ?? 0) >= now()) continue;
    const move = taskMove({ kind: 'expire', task: { ...t, leaseUntil: ownerGone ? 0 : t.leaseUntil }, now: now(), maxAttempts, stopRequested: e.stopRequested });
    if (ownerGone) move.expect.leaseEndedBefore = undefined; // a lease of the dead process, however long
    const r = await store.applyMove(e.id, t.id, move);
    if (!r.applied || r.repeated) continue;
    if (r.task.status === 'Pending') {
      await deps.taskQueue.send([{ executionId: e.id, taskId: t.id }]);
      if (!ownerGone) repaired('requeue', e, { task: t.id, reason: 'lease expired' });
    } else if (r.task.status === 'Error') {
      repaired('lost', e, { task: t.id, reason: 'lease expired, attempts used up' });
    }
  }
  // Pending tasks due long ago and never claimed: their message was lost.
  for await (const t of tasksIn(store, e.id, 'Pending')) {
    if (ownerGone) {
      // The previous process's queue was in memory: every Pending task needs a message now.
      await deps.taskQueue.send([{ executionId: e.id, taskId: t.id, ...(t.checkpoint?.length ? { continuation: true } : {}) }]);
      continue;
    }
    if ((t.queuedAt ?? 0) > now() - deps.lostAfterMs) continue;
    const r = await store.applyMove(e.id, t.id, taskMove({ kind: 'requeue', task: t, now: now(), maxRequeues, stopRequested: e.stopRequested }));
    if (!r.applied || r.repeated) continue;
    if (r.task.status === 'Pending') {
      await deps.taskQueue.send([{ executionId: e.id, taskId: t.id, ...(t.checkpoint?.length ? { continuation: true } : {}) }]);
      repaired('requeue', e, { task: t.id, reason: 'message lost' });
    } else if (r.task.status === 'Error') {
      repaired('lost', e, { task: t.id, reason: 'message lost too often' });
    }
  }
  const settled = await store.settleExecution(e.id);
  if (settled && settled.status !== 'InProgress') repaired('close', e, { status: settled.status });
}

/** The tasks of an execution in one status, page by page (the status index, no scan; one page in memory). */
async function* tasksIn(store: TaskStore, executionId: string, status: 'Running' | 'Pending'): AsyncGenerator<Task> {
  let cursor: string | undefined;
  do {
    const page = await store.listTasks(executionId, { status, limit: 500, cursor });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor);
}
