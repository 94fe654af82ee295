import { BlobLocations } from '../copy/blob-locations.js';
import { copyArtifact } from '../copy/copy-artifact.js';
import { HandedOverError, Handover, type UploadCheckpoint } from '../copy/handover.js';
import type { CopyEvent } from '../copy/progress.js';
import { isAbort, ReplicatorError } from '../errors.js';
import type { Queue, Received, TaskStore } from '../ports.js';
import { isRetryableNetworkError, RegistryError } from '../registry/errors.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { taskError, type Task, type TaskError, type TaskStatus } from './model.js';
import type { TaskMessage } from './planner.js';

/** What a worker reports as it goes. */
export type WorkerEvent =
  | { kind: 'task-start'; task: Task }
  | { kind: 'task-end'; task: Task; status: TaskStatus; bytes: number; text?: string | undefined }
  | { kind: 'task-retry'; task: Task; delayMs: number; reason: string }
  | { kind: 'copy'; task: Task; event: CopyEvent };

/** What workers share. */
export interface WorkerDeps {
  store: TaskStore;
  taskQueue: Queue<TaskMessage>;
  /** The rule's registries, clients and options (cached by the caller). */
  runtime(rule: string): Promise<RuleRuntime>;
  /** Blob locations at destinations, for mounts across tasks. */
  locations?: BlobLocations;
  /** Runs of a task in all before its failure is final (Harbor marks failures too early). */
  maxAttempts?: number;
  retryDelayMs?: (attempt: number) => number;
  leaseMs?: number;
  /** Signals per execution: aborted when the execution is asked to stop (else the store is asked). */
  stopSignal?: (executionId: string) => AbortSignal | undefined;
  /** The rule of an execution, when the caller knows it (else the store is asked). */
  ruleOf?: (executionId: string) => Promise<string | undefined>;
  /** Settle the execution after each task (default); a local runner settles once at the end. */
  settleEach?: boolean;
  /** True while the process shuts down: an aborted task is handed back (Pending), not Stopped. */
  shuttingDown?: () => boolean;
  onEvent?: (e: WorkerEvent) => void;
  now?: () => number;
  /**
   * This run must hand over by then (epoch ms; a Lambda invocation's deadline less a margin):
   * chunked uploads stop after their PATCH in flight, are recorded in the task, and a
   * continuation is queued for the next run.
   */
  handoverAt?: number;
  /** Copies still running at this time (after `handoverAt`) are cut off and handed over as they are. */
  cutoffAt?: number;
}

/** Chunk size of `copy_by_chunk` when the destination sets none (Harbor's default). */
const DEFAULT_CHUNK = 10 * 1024 * 1024;

/**
 * Registry answers that another run may not get: a blob not yet linked when a manifest is pushed
 * (another process uploading the same layer into the same repository at the same moment).
 */
const RETRYABLE_TASK_CODES = new Set(['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID']);

/** Failures worth another run of the task: the registry or the network, not the content. */
export function isRetryableTaskError(err: unknown): boolean {
  if (err instanceof RegistryError) return err.retryable || err.status === undefined || err.codes.some((c) => RETRYABLE_TASK_CODES.has(c));
  if (err instanceof ReplicatorError) return false;
  return isRetryableNetworkError(err);
}

/**
 * Runs one delivered task, idempotently: it is claimed by a conditional Pending -> Running move
 * (a task delivered again after it finished, or running elsewhere, is acknowledged and left
 * alone); its lease is renewed while it copies; a retryable failure puts it back to Pending and
 * redelivers it later, so a failure is final only when attempts are exhausted; a stop ends it
 * Stopped at the next chunk (the copy cancels its upload session).
 */
export async function processTask(msg: Received<TaskMessage>, deps: WorkerDeps): Promise<void> {
  const { store, taskQueue } = deps;
  const now = deps.now ?? Date.now;
  const { executionId, taskId } = msg.body;
  const settle = async () => {
    if (deps.settleEach !== false) await store.settleExecution(executionId);
  };
  if (await stopRequested(executionId, deps)) {
    await store.transitionTask(executionId, taskId, ['Pending', 'Scheduled'], 'Stopped', { statusText: 'stopped' });
    await taskQueue.ack(msg.receipt);
    await settle();
    return;
  }
  const leaseMs = deps.leaseMs ?? 10 * 60_000;
  // The claim reads the task too: one conditional update, no read before it. A continuation
  // of a handed-over run is not another attempt.
  const before = await store.transitionTask(executionId, taskId, ['Pending', 'Scheduled'], 'Running', {
    countAttempt: !msg.body.continuation,
    leaseUntil: now() + leaseMs,
    expiredLeaseBefore: now(),
  });
  if (!before) {
    await taskQueue.ack(msg.receipt); // done already, gone, or another worker has it
    return;
  }
  const attempt = msg.body.continuation ? Math.max(1, before.attempts) : before.attempts + 1;
  const running: Task = { ...before, status: 'Running', attempts: attempt };
  const deadline = runDeadline(deps, now, before.checkpoint);
  const rule = deps.ruleOf ? await deps.ruleOf(executionId) : (await store.getExecution(executionId))?.rule;
  deps.onEvent?.({ kind: 'task-start', task: running });
  const heartbeat = setInterval(() => void store.renewLease(executionId, taskId, now() + leaseMs).catch(() => {}), Math.max(1000, leaseMs / 3));
  const finish = async (status: TaskStatus, patch: { statusText?: string; bytes?: number; error?: TaskError }) => {
    await store.transitionTask(executionId, taskId, ['Running'], status, patch);
    deps.onEvent?.({ kind: 'task-end', task: running, status, bytes: patch.bytes ?? 0, text: patch.statusText });
    await taskQueue.ack(msg.receipt);
    await settle();
  };
  try {
    if (!rule) throw new ReplicatorError('EXECUTION_UNKNOWN', `execution ${executionId} not found`);
    const { bytes, text } = await runTask(running, rule, deps, deadline);
    await finish('Success', { bytes, statusText: text ?? '' }); // clears a retry's note
  } catch (caught) {
    const signal = deps.stopSignal?.(executionId);
    let err = caught;
    if (deadline.handover && (err instanceof HandedOverError || (deadline.cutoff.aborted && !signal?.aborted))) {
      const checkpoints = err instanceof HandedOverError ? [...err.checkpoints] : deadline.handover.checkpoints();
      if (deadline.progressed(checkpoints)) {
        // Continued by the next run: the open uploads go with the task, a new message carries it.
        const sent = checkpoints.reduce((n, c) => n + c.offset, 0);
        const note = `continuing in the next run (${checkpoints.length} upload(s) open, ${sent} bytes sent)`;
        await store.transitionTask(executionId, taskId, ['Running'], 'Pending', { statusText: note, checkpoint: checkpoints });
        await taskQueue.send([{ executionId, taskId, continuation: true }]);
        await taskQueue.ack(msg.receipt);
        deps.onEvent?.({ kind: 'task-end', task: running, status: 'Pending', bytes: 0, text: note });
        return;
      }
      err = new ReplicatorError(
        'DEADLINE',
        'no blob finished or advanced before the run had to hand over: a blob this large needs a chunked upload (copy_by_chunk) or a longer timeout',
      );
    }
    const failure = taskError(err);
    const message = err instanceof ReplicatorError ? `${failure.code}: ${failure.message}` : failure.message;
    if ((isAbort(err) || signal?.aborted) && deps.shuttingDown?.()) {
      // Handed back: Pending again, run after the restart (recovery queues it).
      await store.transitionTask(executionId, taskId, ['Running'], 'Pending', { statusText: 'handed back at shutdown' });
      deps.onEvent?.({ kind: 'task-end', task: running, status: 'Pending', bytes: 0, text: 'handed back at shutdown' });
    } else if (isAbort(err) || signal?.aborted) {
      await finish('Stopped', { statusText: 'stopped' });
    } else if (isRetryableTaskError(err) && attempt < (deps.maxAttempts ?? 3)) {
      const delayMs = deps.retryDelayMs?.(attempt) ?? 2000 * 4 ** (attempt - 1);
      await store.transitionTask(executionId, taskId, ['Running'], 'Pending', { statusText: `attempt ${attempt} failed, retrying: ${message}`, error: failure });
      deps.onEvent?.({ kind: 'task-retry', task: running, delayMs, reason: message });
      await taskQueue.retry(msg.receipt, delayMs);
    } else {
      await finish('Error', { statusText: message, error: failure });
    }
  } finally {
    clearInterval(heartbeat);
    deadline.clear();
  }
}

/** A run's deadline: when to hand over and when to cut off, and whether the run got anywhere. */
interface RunDeadline {
  handover: Handover | undefined;
  cutoff: AbortSignal;
  /** Blobs this run completed (a handover after none, with no upload further along, is no progress). */
  completed: number;
  progressed(checkpoints: readonly UploadCheckpoint[]): boolean;
  clear(): void;
}

function runDeadline(deps: WorkerDeps, now: () => number, previous: readonly UploadCheckpoint[] | undefined): RunDeadline {
  const handoverCtl = new AbortController();
  const cutoffCtl = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  if (deps.handoverAt !== undefined) timers.push(setTimeout(() => handoverCtl.abort(), Math.max(0, deps.handoverAt - now())));
  if (deps.cutoffAt !== undefined) timers.push(setTimeout(() => cutoffCtl.abort(), Math.max(0, deps.cutoffAt - now())));
  const before = new Map((previous ?? []).map((c) => [`${c.repository}@${c.digest}`, c.offset]));
  const d: RunDeadline = {
    handover: deps.handoverAt !== undefined || previous?.length ? new Handover(handoverCtl.signal, previous ?? []) : undefined,
    cutoff: cutoffCtl.signal,
    completed: 0,
    progressed: (checkpoints) => d.completed > 0 || checkpoints.some((c) => c.offset > (before.get(`${c.repository}@${c.digest}`) ?? 0)),
    clear: () => timers.forEach(clearTimeout),
  };
  return d;
}

/** Stop requests: the local signal when there is one, else the execution record (cached briefly). */
async function stopRequested(executionId: string, deps: WorkerDeps): Promise<boolean> {
  const signal = deps.stopSignal?.(executionId);
  if (signal) return signal.aborted;
  const cached = stopCache.get(executionId);
  const now = Date.now();
  if (cached && cached.until > now) return cached.stop;
  const stop = (await deps.store.getExecution(executionId))?.stopRequested ?? false;
  stopCache.set(executionId, { stop, until: now + 2000 });
  if (stopCache.size > 1000) stopCache.clear();
  return stop;
}
const stopCache = new Map<string, { stop: boolean; until: number }>();

async function runTask(task: Task, ruleName: string, deps: WorkerDeps, deadline: RunDeadline): Promise<{ bytes: number; text?: string }> {
  const rt = await deps.runtime(ruleName);
  const stop = deps.stopSignal?.(task.executionId);
  const signal = deps.cutoffAt === undefined ? stop : stop ? AbortSignal.any([stop, deadline.cutoff]) : deadline.cutoff;
  if (task.operation === 'deletion') {
    if (!task.digest) throw new ReplicatorError('TASK_INVALID', 'a deletion task needs a digest');
    const existed = await rt.destinationClient.deleteManifest(task.destination.repository, task.digest, signal);
    return { bytes: 0, text: existed ? 'deleted' : 'already gone' };
  }
  // Harbor wants the project first, ECR the repository (create_repositories); the runtime does
  // each once, not once per task.
  await rt.ensureDestinationRepository?.(task.destination.repository);
  const { rule } = rt;
  const results = await copyArtifact(
    {
      operation: 'copy',
      source: { ...task.source, host: rt.sourceClient.host, digest: task.digest },
      destination: { ...task.destination, host: rt.destinationClient.host },
    },
    { source: rt.sourceClient, destination: rt.destinationClient },
    {
      override: rule.override,
      // ECR: one streamed PUT, whatever copy_by_chunk says. It wants non-final PATCH parts of
      // 5 MB or more and has answered later PATCH bodies as discarded, so chunks buy nothing there.
      chunkSize: rule.copy_by_chunk && rt.destination.type !== 'aws-ecr' ? (rt.destination.chunk_size ?? DEFAULT_CHUNK) : undefined,
      bytesPerSecond: rule.speed > 0 ? rule.speed * 1024 : undefined,
      platforms: rule.platforms,
      locations: deps.locations,
      signal,
      handover: deadline.handover,
      onEvent: (event) => {
        if (event.kind === 'blob-done' && event.outcome !== 'skipped') deadline.completed += 1;
        deps.onEvent?.({ kind: 'copy', task, event });
      },
    },
  );
  const bytes = results.reduce((n, r) => n + r.bytes, 0);
  const skipped = results.find((r) => r.status === 'skipped');
  const text = results.every((r) => r.status === 'in_sync') ? 'in sync' : skipped ? `skipped: ${skipped.reason}` : undefined;
  return { bytes, ...(text ? { text } : {}) };
}
