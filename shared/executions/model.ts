/** Harbor's task statuses (`pkg/task`). */
import type { UploadCheckpoint } from '../copy/handover.js';
import type { ReferrerCounts } from '../copy/referrers.js';
import type { Accessory } from '../sources/source.js';

export type { ReferrerCounts };

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
  /**
   * Bytes its tasks copied (the sum of their `bytes`): like `counts`, a progress view while it
   * runs, the recount of its tasks once it is closed.
   */
  bytes: number;
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
  /** A copy's referrers (signatures, SBOMs, attestations) as its last run left them. */
  referrers?: ReferrerCounts | undefined;
  /** The referrers this task pushed to the destination (a deletion of its subject deletes only those). */
  referrerDigests?: string[] | undefined;
  /** Harbor's accessories of the artifact, as the source listed them (undefined: not listed, asked when copied). */
  accessories?: Accessory[] | undefined;
}

/** A task as the planner creates it. */
export type NewTask = Pick<Task, 'operation' | 'source' | 'destination' | 'digest' | 'accessories'> & {
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

/** Where a task put referrers: a destination registry (its host), repository and the subject's digest. */
export interface ReferrerTarget {
  host: string;
  repository: string;
  subject: string;
}

/** A referrer the replicator pushed to a destination, recorded under its subject's target. */
export interface RecordedReferrer {
  digest: string;
  /** Its own subject (the target's subject, one of its children, or another referrer). */
  subject: string;
  /** Referrers of referrers are deeper: a deletion goes deepest first. */
  depth: number;
  /** The destination tag it was pushed under (cosign's convention). */
  tag?: string | undefined;
}

/** A target as one string: `host/repository@subject`. */
export function referrerTargetKey(t: ReferrerTarget): string {
  return `${t.host}/${t.repository}@${t.subject}`;
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

/** One tag out of step between a rule's source and its destination (found by a reconcile). */
export interface DriftEntry {
  /**
   * `missing`: the source has the tag, the destination does not; `different`: the destination's
   * tag is at another digest; `extra`: the destination has a tag the source no longer has
   * (looked for only when the rule has `replicate_deletion`).
   */
  kind: 'missing' | 'different' | 'extra';
  /** The destination repository. */
  repository: string;
  /** The tag (an untagged artifact: its digest). */
  tag: string;
  /** missing, different: the source repository and the tag's digest there. */
  sourceRepository?: string | undefined;
  sourceDigest?: string | undefined;
  /** different, extra: the tag's digest at the destination. */
  destinationDigest?: string | undefined;
  /** extra: a deletion task was planned (`delete`), or the tag stays (`keep`, with the reason). */
  action?: 'delete' | 'keep' | undefined;
  reason?: string | undefined;
}

/** Drift counts: tags per kind, and the tags found in sync. */
export interface DriftCounts {
  missing: number;
  different: number;
  extra: number;
  inSync: number;
}

/** The entries a stored drift report lists at most (its counts are always whole). */
export const DRIFT_ITEMS_MAX = 100;

/** What a reconcile found: the drift of one rule at one time. */
export interface DriftReport {
  rule: string;
  /** The reconcile execution that measured it (absent in a dry run). */
  execution?: string | undefined;
  /** When the measurement ended (ISO 8601). */
  takenAt: string;
  counts: DriftCounts;
  /** Whether extra tags were looked for (the rule has `replicate_deletion`). */
  extrasChecked: boolean;
  /** The first DRIFT_ITEMS_MAX entries, in the order found. */
  items: DriftEntry[];
  /** True when there were more entries than `items` holds. */
  truncated: boolean;
}

/** One run's lines, as a store appends them to the task's log. */
export interface TaskLogSegment {
  /** The run: the task's revision after the claim that started it (increasing, unique per task). */
  run: number;
  lines: string[];
  /** The run ended the task (Success, Error, Stopped): its lines expire with the task. */
  final: boolean;
  /**
   * The task's first run (attempt 1, not a continuation): no earlier run of it wrote a log, so
   * there is nothing for this one to make invisible (a store can skip looking).
   */
  first?: boolean | undefined;
}
