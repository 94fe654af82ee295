import type { UploadCheckpoint } from '../copy/handover.js';
import { aggregateStatus, countField, type ExecutionStatus, type NewTask, type ReferrerCounts, type Task, type TaskCounts, type TaskError, type TaskStatus } from './model.js';

/**
 * The task state machine, pure: every move a task can make, as data. A move says which state it
 * relies on (its precondition), the state it leads to, and the fields it writes; a store applies
 * it with one conditional write (DynamoDB) or inside a transaction (the embedded store) and
 * decides nothing itself. The counter deltas follow from the statuses before and after.
 *
 * Every move bumps the task's revision and records its own id (`lastMove`): a move delivered
 * twice (a retried write whose first attempt landed) finds its id there and is a no-op that
 * counts nothing. A worker's moves are conditioned on the lease token its claim wrote, so a
 * worker whose lease was taken over fails cleanly ("lease lost") and touches nothing.
 */

/** The fields of a task the state machine reads and writes. */
export interface TaskState {
  status: TaskStatus;
  /** Bumped by every move. */
  revision: number;
  /** Runs that counted (a continuation of a handed-over run does not). */
  attempts: number;
  /** Times the sweeper sent the task again because its message was lost. */
  requeues: number;
  /** While Running: the owner's token and the lease's end (epoch ms). */
  leaseToken?: string | undefined;
  leaseUntil?: number | undefined;
  /** While Pending: when its message becomes deliverable (epoch ms); the sweeper's clock for lost messages. */
  queuedAt?: number | undefined;
  /** The id of the last move applied. */
  lastMove?: string | undefined;
}

/** What a move relies on; a store turns it into a condition expression or checks it in a transaction. */
export interface Precondition {
  /** The task is in one of these statuses... */
  statuses: readonly TaskStatus[];
  /** ...at exactly this revision (moves of a party that read the task). */
  revision?: number | undefined;
  /** ...holding this lease (moves of the worker that owns it). */
  leaseToken?: string | undefined;
  /** ...whose lease ended before this time (the sweeper: a heartbeat since its read wins). */
  leaseEndedBefore?: number | undefined;
  /** Also accepted: Running with a lease that ended before this time (taking over a dead worker's task). */
  orLeaseExpiredBefore?: number | undefined;
}

/** The fields a move sets; a field missing here is left as it is unless listed in `clear`. */
export interface TaskWrite {
  leaseToken?: string;
  leaseUntil?: number;
  queuedAt?: number;
  statusText?: string;
  error?: TaskError;
  bytes?: number;
  checkpoint?: UploadCheckpoint[];
  startTime?: string;
  endTime?: string;
  referrers?: ReferrerCounts;
  referrerDigests?: string[];
}

export type ClearableField = 'leaseToken' | 'leaseUntil' | 'queuedAt' | 'error' | 'checkpoint';

/** One move of one task. */
export interface TaskMove {
  /** Unique per move (a repeated delivery of the same move carries the same id). */
  id: string;
  kind: TaskEvent['kind'];
  expect: Precondition;
  to: TaskStatus;
  set: TaskWrite;
  clear: readonly ClearableField[];
  /** Counted increments besides the revision (always +1). */
  inc: { attempts?: 1; requeues?: 1 };
}

/** Who makes a move, and what they know. */
export type TaskEvent =
  /** A worker takes a delivered task (from Pending, or a Running task whose lease expired). */
  | { kind: 'claim'; token: string; now: number; leaseMs: number; continuation: boolean }
  /** The worker is done: the copy or deletion succeeded. */
  | ({ kind: 'succeed'; token: string; revision: number; now: number; bytes: number; text: string } & ReferrerFields)
  /** The worker failed for good. */
  | ({ kind: 'fail'; token: string; revision: number; now: number; error: TaskError; text: string } & ReferrerFields)
  /** The worker failed and the task runs again after `delayMs` (attempts remain). */
  | ({ kind: 'retry'; token: string; revision: number; now: number; delayMs: number; error: TaskError; text: string } & ReferrerFields)
  /** The worker hands over before its deadline: open uploads go with the task to a continuation. */
  | { kind: 'handover'; token: string; revision: number; now: number; checkpoint: UploadCheckpoint[]; text: string }
  /** The worker's process shuts down: the task goes back to Pending as it is. */
  | { kind: 'handBack'; token: string; revision: number; now: number; text: string }
  /** The worker saw the stop request: its running task ends Stopped. */
  | { kind: 'stopRunning'; token: string; revision: number; now: number }
  /** A stop request ends a task that has not started. */
  | { kind: 'stopPending'; now: number }
  /** Sweeper: a Running task whose lease expired (its worker died): again if attempts remain, else LOST. */
  | { kind: 'expire'; task: TaskState; now: number; maxAttempts: number; stopRequested: boolean }
  /** Sweeper: a Pending task whose message was lost (never claimed after it was due): sent again, or LOST. */
  | { kind: 'requeue'; task: TaskState; now: number; maxRequeues: number; stopRequested: boolean };

/** What a copy's run says of its referrers (written with its end, or its retry). */
interface ReferrerFields {
  referrers?: ReferrerCounts | undefined;
  referrerDigests?: string[] | undefined;
}

/** The referrer fields of an event, only those given. */
function referrerWrite(e: ReferrerFields): Pick<TaskWrite, 'referrers' | 'referrerDigests'> {
  return {
    ...(e.referrers ? { referrers: { copied: e.referrers.copied, in_sync: e.referrers.in_sync, failed: e.referrers.failed } } : {}),
    ...(e.referrerDigests?.length ? { referrerDigests: [...e.referrerDigests] } : {}),
  };
}

/** The code of a task the replicator lost track of (its worker or its message vanished too often). */
export const LOST = 'LOST';

let sequence = 0;
/** A move id: unique within the process, and across processes thanks to the token or time in it. */
function moveId(kind: string, salt: string | number): string {
  sequence = (sequence + 1) % 1_000_000_000;
  return `${kind}:${salt}:${sequence}:${Math.random().toString(36).slice(2, 10)}`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A move of the worker that holds the task: conditioned on its lease token and the revision its claim left. */
function ownerMove(e: { kind: TaskEvent['kind']; token: string; revision: number }, to: TaskStatus, set: TaskWrite, clear: ClearableField[]): TaskMove {
  return { id: moveId(e.kind, e.token), kind: e.kind, expect: { statuses: ['Running'], revision: e.revision, leaseToken: e.token }, to, set, clear, inc: {} };
}

/** The move an event makes. Total: every event has one; whether it applies is its precondition's business. */
export function taskMove(e: TaskEvent): TaskMove {
  switch (e.kind) {
    case 'claim':
      return {
        id: moveId(e.kind, e.token),
        kind: e.kind,
        expect: { statuses: ['Pending', 'Scheduled'], orLeaseExpiredBefore: e.now },
        to: 'Running',
        set: { leaseToken: e.token, leaseUntil: e.now + e.leaseMs, startTime: iso(e.now) },
        clear: ['queuedAt'],
        inc: e.continuation ? {} : { attempts: 1 },
      };
    case 'succeed':
      return ownerMove(e, 'Success', { bytes: e.bytes, statusText: e.text, endTime: iso(e.now), ...referrerWrite(e) }, ['leaseToken', 'leaseUntil', 'checkpoint', 'error']);
    case 'fail':
      return ownerMove(e, 'Error', { error: e.error, statusText: e.text, endTime: iso(e.now), ...referrerWrite(e) }, ['leaseToken', 'leaseUntil', 'checkpoint']);
    case 'retry':
      // Due when the retry delay ends: the sweeper does not take it for lost before then.
      return ownerMove(e, 'Pending', { error: e.error, statusText: e.text, queuedAt: e.now + e.delayMs, ...referrerWrite(e) }, ['leaseToken', 'leaseUntil']);
    case 'handover':
      return ownerMove(e, 'Pending', { checkpoint: e.checkpoint, statusText: e.text, queuedAt: e.now }, ['leaseToken', 'leaseUntil']);
    case 'handBack':
      return ownerMove(e, 'Pending', { statusText: e.text, queuedAt: e.now }, ['leaseToken', 'leaseUntil']);
    case 'stopRunning':
      return ownerMove(e, 'Stopped', { statusText: 'stopped', endTime: iso(e.now) }, ['leaseToken', 'leaseUntil', 'checkpoint']);
    case 'stopPending':
      return {
        id: moveId(e.kind, e.now),
        kind: e.kind,
        expect: { statuses: ['Pending', 'Scheduled'] },
        to: 'Stopped',
        set: { statusText: 'stopped', endTime: iso(e.now) },
        clear: ['queuedAt', 'checkpoint'],
        inc: {},
      };
    case 'expire': {
      const expect: Precondition = { statuses: ['Running'], revision: e.task.revision, leaseToken: e.task.leaseToken, leaseEndedBefore: e.now };
      const id = moveId(e.kind, e.task.revision);
      if (e.stopRequested) {
        return { id, kind: e.kind, expect, to: 'Stopped', set: { statusText: 'stopped (its worker was gone)', endTime: iso(e.now) }, clear: ['leaseToken', 'leaseUntil', 'checkpoint'], inc: {} };
      }
      if (e.task.attempts >= e.maxAttempts) {
        const error = { code: LOST, message: `its worker stopped renewing the lease ${e.task.attempts} time(s); giving up` };
        return { id, kind: e.kind, expect, to: 'Error', set: { error, statusText: `${LOST}: ${error.message}`, endTime: iso(e.now) }, clear: ['leaseToken', 'leaseUntil', 'checkpoint'], inc: {} };
      }
      return { id, kind: e.kind, expect, to: 'Pending', set: { statusText: 'requeued: its worker stopped renewing the lease', queuedAt: e.now }, clear: ['leaseToken', 'leaseUntil'], inc: {} };
    }
    case 'requeue': {
      const expect: Precondition = { statuses: ['Pending', 'Scheduled'], revision: e.task.revision };
      const id = moveId(e.kind, e.task.revision);
      if (e.stopRequested) {
        return { id, kind: e.kind, expect, to: 'Stopped', set: { statusText: 'stopped', endTime: iso(e.now) }, clear: ['queuedAt', 'checkpoint'], inc: {} };
      }
      if (e.task.requeues >= e.maxRequeues) {
        const error = { code: LOST, message: `its queue message was lost ${e.task.requeues + 1} time(s); giving up` };
        return { id, kind: e.kind, expect, to: 'Error', set: { error, statusText: `${LOST}: ${error.message}`, endTime: iso(e.now) }, clear: ['queuedAt', 'checkpoint'], inc: {} };
      }
      return { id, kind: e.kind, expect, to: 'Pending', set: { queuedAt: e.now }, clear: [], inc: { requeues: 1 } };
    }
  }
}

/** Tasks as they are born (every store records them so): revision 0; Pending ones due now, others born final. */
export function newTasks(executionId: string, firstId: number, tasks: readonly NewTask[], now: number): Task[] {
  const at = new Date(now).toISOString();
  return tasks.map((t, i) => {
    const status = t.status ?? 'Pending';
    const final = status !== 'Pending';
    return {
      executionId,
      id: firstId + i,
      operation: t.operation,
      source: t.source,
      destination: t.destination,
      digest: t.digest,
      ...(t.accessories ? { accessories: t.accessories } : {}),
      status,
      statusText: t.statusText,
      ...(t.error ? { error: t.error } : {}),
      attempts: 0,
      revision: 0,
      requeues: 0,
      bytes: 0,
      ...(final ? { startTime: at, endTime: at } : { queuedAt: now }),
    };
  });
}

/** Whether a task's state satisfies a precondition. */
export function satisfies(task: TaskState, p: Precondition): boolean {
  const expired = p.orLeaseExpiredBefore !== undefined && task.status === 'Running' && (task.leaseUntil ?? 0) < p.orLeaseExpiredBefore;
  if (expired) return true;
  if (!p.statuses.includes(task.status)) return false;
  if (p.revision !== undefined && task.revision !== p.revision) return false;
  if (p.leaseToken !== undefined && task.leaseToken !== p.leaseToken) return false;
  if (p.leaseEndedBefore !== undefined && !((task.leaseUntil ?? 0) < p.leaseEndedBefore)) return false;
  return true;
}

/** True when `task` already shows `move` applied (a repeated delivery: nothing to do, nothing to count). */
export function alreadyApplied(task: TaskState, move: TaskMove): boolean {
  return task.lastMove === move.id;
}

/** The state after a move, or undefined when its precondition does not hold. Fields beyond TaskState pass through. */
export function applyMove<T extends TaskState & TaskWrite>(task: T, move: TaskMove): T | undefined {
  if (!satisfies(task, move.expect)) return undefined;
  const next: T = { ...task, ...move.set, status: move.to, revision: task.revision + 1, lastMove: move.id };
  for (const f of move.clear) delete next[f];
  if (move.inc.attempts) next.attempts = task.attempts + 1;
  if (move.inc.requeues) next.requeues = task.requeues + 1;
  return next;
}

/** How a move changes the execution's counters. */
export function countDelta(from: TaskStatus, to: TaskStatus): Partial<TaskCounts> {
  if (from === to) return {};
  return { [countField(from)]: -1, [countField(to)]: 1 };
}

// ---- executions ---------------------------------------------------------------------------------

/** What an execution's close depends on. */
export interface ExecutionFacts {
  status: ExecutionStatus;
  /** Planning finished (its total is final), or was abandoned (stopped, failed). */
  planned: boolean;
  /** Why planning failed, when it did: the execution ends Failed with this text. */
  planError?: string | undefined;
  stopRequested: boolean;
}

export type SettleDecision = { close: false } | { close: true; status: Exclude<ExecutionStatus, 'InProgress'>; statusText?: string | undefined };

/**
 * When an execution is final, from a recount of its tasks (never from counters): planned (or its
 * planning given up) and no task left open. Harbor's aggregation then: a task in Error or a
 * planning error makes it Failed, else a Stopped task (or a stop request) Stopped, else Succeed.
 */
export function settleDecision(e: ExecutionFacts, tasks: TaskCounts): SettleDecision {
  if (e.status !== 'InProgress') return { close: false };
  if (!e.planned) return { close: false };
  if (tasks.pending + tasks.scheduled + tasks.running > 0) return { close: false };
  if (e.planError !== undefined) return { close: true, status: 'Failed', statusText: e.planError };
  const status = aggregateStatus(tasks, true);
  if (status === 'InProgress') return { close: false };
  if (status === 'Succeed' && e.stopRequested && tasks.total === 0) return { close: true, status: 'Stopped' };
  return { close: true, status };
}

/** What the sweeper does about an execution whose planning has not finished. */
export type PlanningRepair = { kind: 'none' } | { kind: 'replan' } | { kind: 'fail'; statusText: string } | { kind: 'abandon' };

/**
 * Planning holds a lease it renews; a planner that died (a killed process, a Lambda that timed out
 * into the dead-letter queue) stops renewing it. Then the planning is resumed, at most
 * `maxReplans` times; a stopped execution's planning is abandoned instead (what was planned runs
 * or stops, and the execution closes).
 */
export function planningRepair(
  e: { planned: boolean; stopRequested: boolean; planLeaseUntil?: number | undefined; replans: number; createdAt: number },
  now: number,
  opts: { graceMs: number; maxReplans: number },
): PlanningRepair {
  if (e.planned) return { kind: 'none' };
  // A planning never started has until the grace after creation (its job may still be queued).
  const until = e.planLeaseUntil ?? e.createdAt + opts.graceMs;
  if (until >= now) return { kind: 'none' };
  if (e.stopRequested) return { kind: 'abandon' };
  if (e.replans >= opts.maxReplans) return { kind: 'fail', statusText: `planning did not finish after ${e.replans} attempt(s) to resume it` };
  return { kind: 'replan' };
}
