import type { Execution, ExecutionStatus, NewTask, Task, TaskCounts, TaskError, TaskStatus, Trigger } from './executions/model.js';
import type { UploadCheckpoint } from './copy/handover.js';
import type { RuleConfig } from './rules/config-schema.js';

/**
 * The engine's ports: what it needs from the platform, one small interface each, with one class
 * per backend in shared/adapters/ (AWS services in the deployment, embedded ones locally).
 */

/** Reads named secrets (AWS Secrets Manager in the AWS deployment). */
export interface SecretStore {
  /** The secret's string value; throws when it does not exist or cannot be read. */
  get(nameOrArn: string): Promise<string>;
}

/** Writes named secrets (AWS Secrets Manager: the API keeps literal credentials there). */
export interface SecretWriter {
  /** Creates the secret, or puts a new value in it when it exists; `tags` are set on creation. */
  put(name: string, value: string, tags?: Record<string, string>): Promise<void>;
}

/** What a task transition sets besides the status. */
export interface TransitionPatch {
  statusText?: string;
  /** The failure to record (moving to Error, or back to Pending for a retry); Success clears it. */
  error?: TaskError;
  bytes?: number;
  /** When moving to Running: the lease's end. */
  leaseUntil?: number;
  /** Count one more run of the task. */
  countAttempt?: boolean;
  /** Also take over a Running task whose lease ended before this time (its worker died). */
  expiredLeaseBefore?: number;
  /** Uploads to continue in the next run (handing over); a final status clears them. */
  checkpoint?: UploadCheckpoint[];
}

/** Filters of an execution listing, newest first. */
export interface ExecutionQuery {
  rule?: string | undefined;
  status?: ExecutionStatus | undefined;
  limit?: number | undefined;
  /** Opaque position from a previous page. */
  cursor?: string | undefined;
}

/** A page of a listing. */
export interface Page<T> {
  items: T[];
  cursor?: string | undefined;
}

/**
 * Durable executions and tasks. Tasks are the truth; an execution's counts are a fast view moved
 * after each task transition and reconciled by a recount when the execution looks finished.
 * Every transition is conditional, so a task delivered twice runs and counts once.
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
  /** Executions still in progress (for recovery, and single-active rules). */
  activeExecutions(rule?: string): Promise<Execution[]>;
  /** Adds tasks (ids continue from `firstId`); counts move with them. */
  addTasks(executionId: string, firstId: number, tasks: NewTask[]): Promise<Task[]>;
  /** Planning is over (`total` tasks); a planning failure fails the execution with `error`. */
  finishPlanning(executionId: string, total: number, error?: string): Promise<void>;
  getTask(executionId: string, taskId: number): Promise<Task | undefined>;
  listTasks(executionId: string, query: { status?: TaskStatus | undefined; limit?: number; cursor?: string | undefined }): Promise<Page<Task>>;
  /**
   * Moves a task from one of `from` to `to` (conditional). Resolves to the task as it was before
   * the move, or undefined when it is in another status (someone else has it, or it is final).
   * `expiredLeaseBefore` also takes over a Running task whose lease has expired (its worker died).
   */
  transitionTask(
    executionId: string,
    taskId: number,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch?: TransitionPatch,
  ): Promise<Task | undefined>;
  /** Extends a running task's lease. */
  renewLease(executionId: string, taskId: number, leaseUntil: number): Promise<void>;
  /**
   * Recounts the tasks when the counts say nothing is left (or always, with `force`: when the
   * caller knows no work is in flight, or after a crash), and closes the execution if so.
   */
  settleExecution(executionId: string, opts?: { force?: boolean }): Promise<Execution | undefined>;
  /** Sets an open execution's counters to a recount of its tasks (after a crash). */
  reconcileCounts(executionId: string): Promise<TaskCounts>;
  /** Asks the execution to stop: no new task starts; pending tasks become Stopped. */
  requestStop(executionId: string): Promise<void>;
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
}

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
}

/** Registries and rules managed through the API (the config file's are read-only). */
export interface ConfigStore {
  listEntries(kind: 'registry' | 'rule'): Promise<Array<Record<string, unknown>>>;
  getEntry(kind: 'registry' | 'rule', name: string): Promise<Record<string, unknown> | undefined>;
  /** Creates (`create`: fails when it exists) or replaces an entry. */
  putEntry(kind: 'registry' | 'rule', name: string, value: Record<string, unknown>, mode: 'create' | 'replace'): Promise<boolean>;
  deleteEntry(kind: 'registry' | 'rule', name: string): Promise<boolean>;
}

/**
 * Schedules of scheduled rules run by a service outside the process (EventBridge Scheduler on
 * AWS). Only the schedules this store manages are touched (those of rules created through the
 * API); the config file's rules get theirs from the deployment.
 */
export interface ScheduleStore {
  /** Makes the managed schedules match the enabled scheduled rules in `rules`. */
  sync(rules: readonly RuleConfig[]): Promise<{ created: string[]; updated: string[]; deleted: string[] }>;
}
