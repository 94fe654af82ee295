import type { DriftReport, Execution, ExecutionStatus, NewTask, RecordedReferrer, ReferrerTarget, Task, TaskCounts, TaskLogSegment, TaskStatus, Trigger } from './model.js';
import type { TaskMove } from './transitions.js';

/**
 * The ports of the executions engine: what it needs from the platform, one small interface each,
 * with one class per backend in shared/adapters/ (aws/: DynamoDB, SQS; local/: SQLite, in-process
 * queues).
 */

/** Filters of an execution listing, newest first. */
export interface ExecutionQuery {
  rule?: string | undefined;
  status?: ExecutionStatus | undefined;
  trigger?: Trigger | undefined;
  limit?: number | undefined;
  /** Opaque position from a previous page. */
  cursor?: string | undefined;
}

/** A page of a listing. */
export interface Page<T> {
  items: T[];
  cursor?: string | undefined;
}

/** What applying a move did. */
export type MoveOutcome =
  /** Applied now (`repeated`: it had been applied before, by an earlier delivery of the same move: nothing counted). */
  | { applied: true; repeated: boolean; from: TaskStatus; task: Task }
  /** Its precondition does not hold: the task as it is (undefined when there is no such task). */
  | { applied: false; task: Task | undefined };

/**
 * Durable executions and tasks. Tasks are the truth: an execution's counts are a progress view,
 * and every close (settle, stop, the sweeper) decides the final status from a recount of the
 * tasks. Tasks move only by the moves of `executions/transitions.ts`, applied conditionally, so
 * a task delivered twice runs and counts once, and a worker whose lease was taken over cannot
 * touch the task any more. A backend maps moves to its own conditional writes; it decides nothing.
 */
export interface TaskStore {
  /** Creates an execution (InProgress, not yet planned) with a new id. */
  createExecution(init: { rule: string; trigger: Trigger }): Promise<Execution>;
  /** Records an execution that never ran (e.g. a single-active rule already running). */
  createFinishedExecution(init: {
    rule: string;
    trigger: Trigger;
    status: ExecutionStatus;
    statusText: string;
  }): Promise<Execution>;
  getExecution(id: string): Promise<Execution | undefined>;
  listExecutions(query: ExecutionQuery): Promise<Page<Execution>>;
  /** Executions still in progress (for recovery, the sweeper, and single-active rules). */
  activeExecutions(rule?: string): Promise<Execution[]>;
  /** Adds tasks (ids continue from `firstId`); Pending ones are due now. Counts move with them. */
  addTasks(executionId: string, firstId: number, tasks: NewTask[]): Promise<Task[]>;
  /**
   * Takes the planning lease of an execution not yet planned, or renews it with the same token;
   * false when another planner holds a live lease or planning is over.
   */
  leasePlanning(executionId: string, token: string, until: number): Promise<boolean>;
  /**
   * Planning is over with `total` tasks. With `error`, planning failed: the execution ends Failed
   * with that text once its tasks have ended. Then settles.
   */
  finishPlanning(executionId: string, total: number, opts?: { error?: string | undefined }): Promise<Execution | undefined>;
  /**
   * Releases the planning lease of a planner that is gone, so the planning can be resumed; with
   * `countReplan` (the sweeper), one more replan is counted. The replans so far.
   */
  releasePlanning(executionId: string, opts: { countReplan: boolean }): Promise<number>;
  getTask(executionId: string, taskId: number): Promise<Task | undefined>;
  listTasks(executionId: string, query: { status?: TaskStatus | undefined; limit?: number; cursor?: string | undefined }): Promise<Page<Task>>;
  /** Applies one move of `transitions.ts` (conditionally; see MoveOutcome). */
  applyMove(executionId: string, taskId: number, move: TaskMove): Promise<MoveOutcome>;
  /** Extends the lease of the worker holding `token`; false when the lease is no longer its own. */
  heartbeat(executionId: string, taskId: number, token: string, leaseUntil: number): Promise<boolean>;
  /**
   * Adds one run's lines to a task's log (task-log.ts): once per run (a repeated write of the
   * same run changes nothing), kept to the newest TASK_LOG_MAX_LINES lines and
   * TASK_LOG_MAX_BYTES, stored with the task and expiring with it.
   */
  appendTaskLog(executionId: string, taskId: number, segment: TaskLogSegment): Promise<void>;
  /** A task's log, oldest line first, within the bounds (empty when none was written). */
  taskLog(executionId: string, taskId: number): Promise<string[]>;
  /** Recounts the tasks and closes the execution when `settleDecision` says it is final. */
  settleExecution(executionId: string): Promise<Execution | undefined>;
  /** Sets an open execution's counters (and bytes) to a recount of its tasks; `corrected` when they were off. */
  recount(executionId: string): Promise<{ counts: TaskCounts; corrected: boolean }>;
  /** Asks the execution to stop: no new task starts; tasks not started become Stopped; then settles. */
  requestStop(executionId: string): Promise<Execution | undefined>;
  /** Keeps a reconcile's drift as its rule's last, unless one taken later is kept already. */
  recordDrift(report: DriftReport): Promise<void>;
  /** The last drift recorded for a rule. */
  lastDrift(rule: string): Promise<DriftReport | undefined>;
  /**
   * Records referrers a copy pushed to a destination under its subject (added to what is
   * recorded; a digest recorded again replaces its entry): what a deletion of the subject there
   * may delete. Referrers found at the destination already are never recorded.
   */
  recordReferrers(target: ReferrerTarget, referrers: readonly RecordedReferrer[]): Promise<void>;
  /** The referrers recorded for a subject at a destination (at most `limit`, default 10,000). */
  recordedReferrers(target: ReferrerTarget, limit?: number): Promise<RecordedReferrer[]>;
  /** Forgets recorded referrers (deleted, or gone). */
  forgetReferrers(target: ReferrerTarget, digests: readonly string[]): Promise<void>;
}

/** A message received from a queue. */
export interface Received<T> {
  body: T;
  /** Handle for ack/retry. */
  receipt: string;
  /** Deliveries so far, this one included. */
  receiveCount: number;
}

/** At-least-once queue (SQS in AWS, in-process locally). */
export interface Queue<T> {
  send(messages: T[], delayMs?: number): Promise<void>;
  /** Up to `max` messages, waiting up to `waitMs` for the first. */
  receive(max: number, waitMs: number, signal?: AbortSignal): Promise<Array<Received<T>>>;
  /** Done with it: delete. */
  ack(receipt: string): Promise<void>;
  /** Not done: deliver again after `delayMs`. */
  retry(receipt: string, delayMs: number): Promise<void>;
  /** Still working on it: not delivered again for `visibilityMs` from now (a heartbeat). */
  extend(receipt: string, visibilityMs: number): Promise<void>;
}

/** How an in-process queue behaves (visibility timeout, backpressure). */
export interface LocalQueueOptions {
  /** A received message not acked within this is delivered again. */
  visibilityTimeoutMs: number;
  /** `send` waits while this many messages are queued. */
  highWater: number;
}

/** A queue in this process (`run`, `serve`): it also tells how many messages are queued or in flight. */
export type LocalQueue<T> = Queue<T> & { readonly size: number };

/** Makes the in-process queues of a local host (the host chooses the implementation). */
export type LocalQueueFactory = <T>(opts: LocalQueueOptions) => LocalQueue<T>;

/**
 * Webhook deliveries already taken (Harbor retries a delivery it thinks timed out): the first
 * claim of a key wins; later ones read the executions it started.
 */
export interface DeliveryLog {
  /** True for the first claim of `key` (kept `ttlSeconds`), false when it was seen before. */
  claimDelivery(key: string, ttlSeconds: number): Promise<boolean>;
  /** Records what a claimed delivery started. */
  recordDelivery(key: string, executionIds: string[]): Promise<void>;
  /** The executions a delivery started (empty while it is still being handled). */
  deliveryExecutions(key: string): Promise<string[]>;
  /** Forgets a claim whose work could not be queued, so the sender's retry is handled afresh. */
  releaseDelivery(key: string): Promise<void>;
}
