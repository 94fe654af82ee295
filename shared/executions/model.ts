/** Harbor's task statuses (`pkg/task`). */
import type { UploadCheckpoint } from '../copy/handover.js';

export const TASK_STATUSES = ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Harbor's execution statuses as its API shows them. */
export const EXECUTION_STATUSES = ['InProgress', 'Succeed', 'Failed', 'Stopped'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/**
 * What started an execution: Harbor's three, and `reconcile` (a full run of the rule that also
 * measures its drift and, with `replicate_deletion`, removes destination tags the source no
 * longer has; see executions/reconcile.ts).
 */
export const TRIGGERS = ['manual', 'scheduled', 'event_based', 'reconcile'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** Task operations. */
export type Operation = 'copy' | 'deletion';

/** Tasks per status, the execution's fast view (tasks are the truth). */
export interface TaskCounts {
  total: number;
  pending: number;
  scheduled: number;
  running: number;
  succeed: number;
  failed: number;
  stopped: number;
}

/** One rule run. */
export interface Execution {
  id: string;
  rule: string;
  trigger: Trigger;
  status: ExecutionStatus;
  /** Why it failed or was skipped (planning error, "active replication still in progress"). */
  statusText?: string | undefined;
  counts: TaskCounts;
  /** Planning finished: `counts.total` is final. */
  planned: boolean;
  stopRequested: boolean;
  startTime: string;
  endTime?: string | undefined;
  /** While planning: when the planner's lease ends (epoch ms); a planner that died stops renewing it. */
  planLeaseUntil?: number | undefined;
  /** Times the sweeper resumed a planning whose planner was gone. */
  replans?: number | undefined;
}

/** One side of a task's artifact. */
export interface TaskRef {
  registry: string;
  repository: string;
  tags: string[];
}

/** Why a task failed: a stable code (`INVALID_NAME`, `MANIFEST_UNKNOWN`, ...) and a message, as `copy --json` prints it. */
export interface TaskError {
  code: string;
  message: string;
}

/** One artifact (a tag, or an artifact with all its tags) to copy or delete. */
export interface Task {
  executionId: string;
  id: number;
  operation: Operation;
  source: TaskRef;
  destination: TaskRef;
  digest?: string | undefined;
  status: TaskStatus;
  /** The error, or a note such as "in sync". */
  statusText?: string | undefined;
  /** The last failure (kept while a retry is pending; cleared by success). */
  error?: TaskError | undefined;
  /** Runs so far (a retry adds one). */
  attempts: number;
  bytes: number;
  startTime?: string | undefined;
  endTime?: string | undefined;
  /** Bumped by every move (see transitions.ts). */
  revision: number;
  /** Times the sweeper sent it again because its queue message was lost. */
  requeues: number;
  /** While Running: the worker's lease; a crashed worker's task is taken over after it. */
  leaseUntil?: number | undefined;
  /** While Running: the token of the worker that holds the lease. */
  leaseToken?: string | undefined;
  /** While Pending: when its message becomes deliverable (epoch ms). */
  queuedAt?: number | undefined;
  /** The id of the last move applied (a repeated move finds itself here). */
  lastMove?: string | undefined;
  /** Uploads a run handed over before its deadline, for the next run to continue. */
  checkpoint?: UploadCheckpoint[] | undefined;
}

/** A task as the planner creates it. */
export type NewTask = Pick<Task, 'operation' | 'source' | 'destination' | 'digest'> & {
  /** Born final: Success for tags already in sync, Error for names the destination refuses. */
  status?: 'Pending' | 'Success' | 'Error';
  statusText?: string;
  error?: TaskError;
};

/** The `error` of a failure: a ReplicatorError's code, or `ERROR` for anything else. */
export function taskError(err: unknown): TaskError {
  const code = typeof (err as { code?: unknown })?.code === 'string' && /^[A-Z0-9_]{1,64}$/.test((err as { code: string }).code) ? (err as { code: string }).code : 'ERROR';
  const message = err instanceof Error ? err.message : String(err);
  return { code, message };
}

/** Statuses that are final for a task. */
export const FINAL_TASK: ReadonlySet<TaskStatus> = new Set(['Stopped', 'Error', 'Success']);

/** Zero counts. */
export function emptyCounts(): TaskCounts {
  return { total: 0, pending: 0, scheduled: 0, running: 0, succeed: 0, failed: 0, stopped: 0 };
}

/** The counts field a task status moves. */
export function countField(status: TaskStatus): Exclude<keyof TaskCounts, 'total'> {
  switch (status) {
    case 'Pending':
      return 'pending';
    case 'Scheduled':
      return 'scheduled';
    case 'Running':
      return 'running';
    case 'Success':
      return 'succeed';
    case 'Error':
      return 'failed';
    case 'Stopped':
      return 'stopped';
  }
}

/**
 * Harbor's aggregation (`pkg/task/dao/execution.go`): any Pending/Scheduled/Running -> InProgress;
 * else any Error -> Failed; else any Stopped -> Stopped; else Succeed. An execution still being
 * planned is InProgress whatever its tasks say.
 */
export function aggregateStatus(counts: TaskCounts, planned: boolean): ExecutionStatus {
  if (!planned || counts.pending + counts.scheduled + counts.running > 0) return 'InProgress';
  if (counts.failed > 0) return 'Failed';
  if (counts.stopped > 0) return 'Stopped';
  return 'Succeed';
}
