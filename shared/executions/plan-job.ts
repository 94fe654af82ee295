import { randomUUID } from 'node:crypto';
import { describeError, ReplicatorError } from '../errors.js';
import type { Log } from '../observability/telemetry.js';
import { linkSignals } from '../util/signals.js';
import type { Queue, TaskStore } from './ports.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import type { PlanJob, TaskMessage } from './messages.js';
import type { PlannedDestinations } from './planned-destinations.js';
import { planArtifactEvent, planExecution, taskKey, type PlanSummary } from './planner.js';
import { planReconcile } from './reconcile.js';
import type { Accessory } from '../sources/source.js';

/** What a planning job needs from its host. */
export interface PlanJobDeps {
  store: TaskStore;
  taskQueue: Pick<Queue<TaskMessage>, 'send'>;
  runtime: (rule: string) => Promise<RuleRuntime>;
  log: Log;
  /** Progress of a full planning, after each batch recorded. */
  onPlanned?: ((s: PlanSummary) => void) | undefined;
  /** What the destination HEADs found, left for this process's workers. */
  planned?: PlannedDestinations | undefined;
}

/** How long a planner's lease on a planning lasts without renewal (renewed every quarter of it). */
export const PLAN_LEASE_MS = 2 * 60_000;

/**
 * Runs one planning job: a webhook's artifact (one task; for a Harbor source, with all the
 * artifact's tags, since Harbor sends only the first), or a rule's full plan, resumed after a
 * crash without recording any artifact twice. The planning holds a lease it renews, so a second
 * delivery of the job while it runs does nothing, and a planner that dies is noticed by the
 * sweeper, which resumes it. Closes the planning in the store; a failure is thrown to the caller
 * (see `failPlanning`).
 */
export async function runPlanJob(job: PlanJob, deps: PlanJobDeps & { signal?: AbortSignal | undefined; now?: () => number }): Promise<void> {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const token = randomUUID();
  if (!(await store.leasePlanning(job.executionId, token, now() + PLAN_LEASE_MS))) {
    deps.log.info('planning skipped: done already, or another planner has it', { execution: job.executionId, rule: job.rule });
    return;
  }
  const lost = new AbortController();
  const renew = setInterval(() => {
    store
      .leasePlanning(job.executionId, token, now() + PLAN_LEASE_MS)
      .then((ours) => ours || lost.abort(new ReplicatorError('LEASE_LOST', 'another planner resumed this planning')))
      .catch(() => {}); // a failed renewal is not a lost lease; the next one may pass
  }, PLAN_LEASE_MS / 4);
  const linked = linkSignals([deps.signal, lost.signal]);
  try {
    await plan(job, { ...deps, signal: linked.signal, lost: lost.signal, now });
    if (lost.signal.aborted) deps.log.warn('planning lease lost: another planner resumed it', { execution: job.executionId, rule: job.rule });
  } catch (err) {
    if (lost.signal.aborted) {
      deps.log.warn('planning lease lost: another planner resumed it', { execution: job.executionId, rule: job.rule });
      return;
    }
    // Let the next delivery of the job (or the sweeper) take the planning at once.
    await store.releasePlanning(job.executionId, { countReplan: false }).catch(() => {});
    throw err;
  } finally {
    clearInterval(renew);
    linked.unlink();
  }
}

async function plan(job: PlanJob, deps: PlanJobDeps & { signal: AbortSignal; lost: AbortSignal; now?: (() => number) | undefined }): Promise<void> {
  const rt = await deps.runtime(job.rule);
  const { store } = deps;
  if (job.event) {
    // Planned before (this is a resumed job): its one task is there already.
    if (await store.getTask(job.executionId, 1)) {
      await store.finishPlanning(job.executionId, 1);
      return;
    }
    let tags = job.event.tag ? [job.event.tag] : [];
    let labels: string[] | undefined;
    let accessories: Accessory[] | undefined;
    if (job.event.type === 'PUSH_ARTIFACT' && rt.sourceHarbor) {
      // Harbor sends the first tag only, no label and no accessory: ask for the artifact's (label
      // filters need them; accessories follow it).
      const facts = await rt.sourceHarbor.artifactFacts(job.event.repository, job.event.digest).catch(() => undefined);
      if (facts) ({ tags, labels, accessories } = facts);
    }
    const planned = planArtifactEvent(
      rt.rule,
      { operation: job.event.type === 'DELETE_ARTIFACT' ? 'deletion' : 'copy', repository: job.event.repository, digest: job.event.digest, tags, labels, accessories },
      { source: rt.source.name, destination: rt.destination.name, destinationType: rt.destination.type },
    );
    if ('excluded' in planned) {
      await store.finishPlanning(job.executionId, 0);
      deps.log.info('event left out by the rule', { execution: job.executionId, rule: job.rule, reason: planned.excluded });
      return;
    }
    const [task] = await store.addTasks(job.executionId, 1, [planned.task]);
    if (task?.status === 'Pending') await deps.taskQueue.send([{ executionId: job.executionId, taskId: task.id }]);
    await store.finishPlanning(job.executionId, 1);
    return;
  }
  let skip: Set<string> | undefined;
  let firstId = 1;
  if (job.resume) {
    // Artifacts recorded by the planner that died are not recorded again; its Pending tasks are
    // sent again (their messages may have died with it; a task claimed twice runs once).
    skip = new Set();
    let cursor: string | undefined;
    do {
      const page = await store.listTasks(job.executionId, { limit: 1000, cursor });
      for (const t of page.items) {
        skip.add(taskKey({ ...t.source, digest: t.digest }));
        firstId = Math.max(firstId, t.id + 1);
      }
      const pending = page.items.filter((t) => t.status === 'Pending');
      if (pending.length > 0) await deps.taskQueue.send(pending.map((t) => ({ executionId: job.executionId, taskId: t.id })));
      cursor = page.cursor;
    } while (cursor);
  }
  // A reconcile is the same full plan, its drift measured, plus deletions of extra tags (reconcile.ts).
  const reconcile = (await store.getExecution(job.executionId))?.trigger === 'reconcile';
  const planOpts = { signal: deps.signal, skip, firstId, onPlanned: deps.onPlanned };
  const summary = reconcile
    ? await planReconcile(job.executionId, rt, { store, taskQueue: deps.taskQueue, now: deps.now }, planOpts)
    : await planExecution(job.executionId, rt, { store, taskQueue: deps.taskQueue }, planOpts);
  if (deps.lost.aborted) return; // the planner that took over finishes it
  await store.finishPlanning(job.executionId, firstId - 1 + summary.total);
  deps.log.info('execution planned', { execution: job.executionId, rule: job.rule, ...summary });
}

/** Records a planning that failed for good: the execution ends Failed once its tasks have ended. */
export async function failPlanning(store: TaskStore, job: Pick<PlanJob, 'executionId' | 'rule'>, err: unknown, log: Log): Promise<void> {
  const text = `planning failed: ${describeError(err)}`;
  log.error('planning failed', { execution: job.executionId, rule: job.rule, error: text });
  await store.finishPlanning(job.executionId, 0, { error: text });
}
