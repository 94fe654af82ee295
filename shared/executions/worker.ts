import { BlobLocations } from '../copy/blob-locations.js';
import { MemoryKeyedLock, type KeyedLock } from '../copy/keyed-lock.js';
import type { ReferrerEvent } from '../copy/referrers.js';
import { copyArtifact } from './copy-artifact.js';
import { deleteDriftedTags } from './drift-deletion.js';
import { copyTaskReferrers, deleteTaskReferrers, TaskReferrersError, type TaskReferrerOutcome } from './task-referrers.js';
import { HandedOverError, Handover, type UploadCheckpoint } from '../copy/handover.js';
import type { CopyEvent } from '../copy/progress.js';
import { isAbort, ReplicatorError } from '../errors.js';
import type { Queue, Received, TaskStore } from './ports.js';
import { isTransient } from '../registry/errors.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { randomUUID } from 'node:crypto';
import { taskError, type Task, type TaskStatus } from './model.js';
import type { TaskMessage } from './messages.js';
import type { PlannedDestinations } from './planned-destinations.js';
import { taskMove, type TaskEvent } from './transitions.js';
import { linkSignals } from '../util/signals.js';
import { withHttpListener } from '../registry/event-scope.js';
import { TaskRunLog } from './task-log.js';

/** What a worker reports as it goes. */
export type WorkerEvent =
  | { kind: 'task-start'; task: Task }
  | { kind: 'task-end'; task: Task; status: TaskStatus; bytes: number; text?: string | undefined }
  | { kind: 'task-retry'; task: Task; delayMs: number; reason: string }
  /** The task's lease was taken over (this worker was too slow, or thought dead): nothing of its was written. */
  | { kind: 'lease-lost'; task: Task }
  | { kind: 'copy'; task: Task; event: CopyEvent }
  /** One referrer of the task's image (a signature, an SBOM, an attestation) handled. */
  | { kind: 'referrer'; task: Task; event: ReferrerEvent };

/** What workers share. */
export interface WorkerDeps {
  store: TaskStore;
  taskQueue: Queue<TaskMessage>;
  /** The rule's registries, clients and options (cached by the caller). */
  runtime(rule: string): Promise<RuleRuntime>;
  /** Blob locations at destinations, for mounts across tasks. */
  locations?: BlobLocations;
  /**
   * Serializes updates of one destination `sha256-<hex>` referrers index: this process's by
   * default; Lambda copiers share a lease in the table.
   */
  referrersLock?: KeyedLock;
  /** What this process's planner saw at the destination (its copy does not HEAD the tags again). */
  planned?: PlannedDestinations | undefined;
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



/**
 * Runs one delivered task, idempotently: it is claimed by a conditional move that writes a new
 * lease token (a task delivered again after it finished, or running elsewhere, is acknowledged
 * and left alone); the lease and the message's visibility are renewed while it copies; every
 * later move is conditioned on that token and the revision the claim left, so a worker whose
 * lease was taken over stops and touches nothing. A retryable failure puts the task back to
 * Pending and sends a fresh message after the delay, so a failure is final only when attempts
 * are exhausted; a stop ends it Stopped at the next chunk (the copy cancels its upload session).
 */
export async function processTask(msg: Received<TaskMessage>, deps: WorkerDeps): Promise<void> {
  const { store, taskQueue } = deps;
  const now = deps.now ?? Date.now;
  const { executionId, taskId } = msg.body;
  const leaseMs = deps.leaseMs ?? 10 * 60_000;
  const settle = async () => {
    if (deps.settleEach !== false) await store.settleExecution(executionId);
  };
  // Time spent waiting for a worker slot does not count against the message's visibility.
  await taskQueue.extend(msg.receipt, leaseMs);
  if (await stopRequested(executionId, deps)) {
    await store.applyMove(executionId, taskId, taskMove({ kind: 'stopPending', now: now() }));
    await taskQueue.ack(msg.receipt);
    await settle();
    return;
  }
  const token = randomUUID();
  // The claim reads the task too: one conditional update, no read before it. A continuation
  // of a handed-over run is not another attempt.
  const claim = await store.applyMove(executionId, taskId, taskMove({ kind: 'claim', token, now: now(), leaseMs, continuation: msg.body.continuation === true }));
  if (!claim.applied) {
    await taskQueue.ack(msg.receipt); // done already, gone, or another worker has it
    return;
  }
  const running: Task = claim.task;
  // The run's log (task-log.ts): its steps from the copy's events and its own requests' retries,
  // written with the task once, by the run's last move.
  const runLog = new TaskRunLog(running, now);
  runLog.started(msg.body.continuation === true);
  const runDeps: WorkerDeps = {
    ...deps,
    onEvent: (e) => {
      if (e.kind === 'copy') runLog.copy(e.event);
      else if (e.kind === 'referrer') runLog.referrer(e.event);
      deps.onEvent?.(e);
    },
  };
  const attempt = Math.max(1, running.attempts);
  const deadline = runDeadline(deps, now, running.checkpoint);
  const rule = deps.ruleOf ? await deps.ruleOf(executionId) : (await store.getExecution(executionId))?.rule;
  deps.onEvent?.({ kind: 'task-start', task: running });
  // The lease: renewed while the copy runs; lost when another worker took the task over.
  const lease = new AbortController();
  const heartbeat = setInterval(() => {
    void (async () => {
      const ours = await store.heartbeat(executionId, taskId, token, now() + leaseMs).catch(() => true); // a failed write is not a lost lease
      if (!ours) lease.abort(new LeaseLostError(executionId, taskId));
      await taskQueue.extend(msg.receipt, leaseMs).catch(() => {});
    })();
  }, Math.max(1000, leaseMs / 3));
  /** The worker's next move, conditioned on its token and the claim's revision; false when the lease was lost. */
  const move = async (event: TaskEvent): Promise<boolean> => {
    const r = await store.applyMove(executionId, taskId, taskMove(event));
    if (!r.applied) deps.onEvent?.({ kind: 'lease-lost', task: running });
    runLog.ended(event, r.applied);
    await runLog.save(store, r.applied ? { status: r.task.status } : {});
    return r.applied;
  };
  const own = { token, revision: running.revision };
  const finish = async (event: Extract<TaskEvent, { kind: 'succeed' | 'fail' | 'stopRunning' }>, bytes: number, text: string | undefined) => {
    const status = event.kind === 'succeed' ? 'Success' : event.kind === 'fail' ? 'Error' : 'Stopped';
    if (await move(event)) deps.onEvent?.({ kind: 'task-end', task: running, status, bytes, text });
    await taskQueue.ack(msg.receipt);
    await settle();
  };
  /** The referrer fields of a move: this run's counts, and every digest the task pushed so far. */
  const referrerFields = (r: Pick<TaskReferrerOutcome, 'counts' | 'digests'> | undefined) =>
    r ? { referrers: r.counts, referrerDigests: [...new Set([...(running.referrerDigests ?? []), ...r.digests])] } : {};
  try {
    if (!rule) throw new ReplicatorError('EXECUTION_UNKNOWN', `execution ${executionId} not found`);
    const { bytes, text, referrers } = await withHttpListener((e) => runLog.http(e), () => runTask(running, rule, runDeps, deadline, lease.signal));
    await finish({ kind: 'succeed', ...own, now: now(), bytes, text: text ?? '', ...referrerFields(referrers) }, bytes, text); // clears a retry's note
  } catch (caught) {
    const signal = deps.stopSignal?.(executionId);
    let err = caught;
    if (lease.signal.aborted) {
      // Another worker has the task now: nothing of ours may touch it (its log is its own, under this run).
      deps.onEvent?.({ kind: 'lease-lost', task: running });
      runLog.leaseLost();
      await taskQueue.ack(msg.receipt);
      return;
    }
    if (deadline.handover && (err instanceof HandedOverError || (deadline.cutoff.aborted && !signal?.aborted))) {
      const checkpoints = err instanceof HandedOverError ? [...err.checkpoints] : deadline.handover.checkpoints();
      if (deadline.progressed(checkpoints)) {
        // Continued by the next run: the open uploads go with the task, a new message carries it.
        const sent = checkpoints.reduce((n, c) => n + c.offset, 0);
        const note = `continuing in the next run (${checkpoints.length} upload(s) open, ${sent} bytes sent)`;
        if (await move({ kind: 'handover', ...own, now: now(), checkpoint: checkpoints, text: note })) {
          await taskQueue.send([{ executionId, taskId, continuation: true }]);
          deps.onEvent?.({ kind: 'task-end', task: running, status: 'Pending', bytes: 0, text: note });
        }
        await taskQueue.ack(msg.receipt);
        return;
      }
      err = new ReplicatorError(
        'DEADLINE',
        'no blob finished or advanced before the run had to hand over: a blob this large needs a chunked upload (copy_by_chunk) or a longer timeout',
      );
    }
    const failure = taskError(err);
    const message = err instanceof ReplicatorError ? `${failure.code}: ${failure.message}` : failure.message;
    const referred = err instanceof TaskReferrersError ? referrerFields({ counts: err.outcome.counts, digests: err.digests }) : {};
    if ((isAbort(err) || signal?.aborted) && deps.shuttingDown?.()) {
      // Handed back: Pending again, run after the restart (recovery queues it).
      if (await move({ kind: 'handBack', ...own, now: now(), text: 'handed back at shutdown' })) {
        deps.onEvent?.({ kind: 'task-end', task: running, status: 'Pending', bytes: 0, text: 'handed back at shutdown' });
      }
      await taskQueue.ack(msg.receipt);
    } else if (isAbort(err) || signal?.aborted) {
      await finish({ kind: 'stopRunning', ...own, now: now() }, 0, 'stopped');
    } else if (isTransient(err) && attempt < (deps.maxAttempts ?? 3)) {
      const delayMs = deps.retryDelayMs?.(attempt) ?? 2000 * 4 ** (attempt - 1);
      if (await move({ kind: 'retry', ...own, now: now(), delayMs, error: failure, text: `attempt ${attempt} failed, retrying: ${message}`, ...referred })) {
        deps.onEvent?.({ kind: 'task-retry', task: running, delayMs, reason: message });
        // A fresh message, not the old receipt's visibility: a stale receipt cannot lose the retry.
        await taskQueue.send([{ executionId, taskId }], delayMs);
      }
      await taskQueue.ack(msg.receipt);
    } else {
      await finish({ kind: 'fail', ...own, now: now(), error: failure, text: message, ...referred }, 0, message);
    }
  } finally {
    clearInterval(heartbeat);
    deadline.clear();
    await runLog.save(store); // a run that ended without a move of its own (lease lost, a store failure)
  }
}

/** The task was taken over by another worker (this one's lease ended): its copy stops here. */
export class LeaseLostError extends ReplicatorError {
  override name = 'LeaseLostError';
  constructor(executionId: string, taskId: number) {
    super('LEASE_LOST', `execution ${executionId} task ${taskId}: the lease was taken over by another worker`);
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

/** What one run of a task did. */
interface RunOutcome {
  bytes: number;
  text?: string;
  /** A copy's referrers (undefined: not followed, `referrers: false` or a deletion). */
  referrers?: TaskReferrerOutcome | undefined;
}

/** This process's lock of destination referrers indexes, when the host gives none. */
const processLock = new MemoryKeyedLock();

async function runTask(task: Task, ruleName: string, deps: WorkerDeps, deadline: RunDeadline, lease: AbortSignal): Promise<RunOutcome> {
  const rt = await deps.runtime(ruleName);
  const stop = deps.stopSignal?.(task.executionId);
  const linked = linkSignals([lease, stop, deps.cutoffAt === undefined ? undefined : deadline.cutoff]);
  try {
    return await copyOrDelete(task, rt, deps, deadline, linked.signal);
  } finally {
    linked.unlink();
  }
}

async function copyOrDelete(task: Task, rt: RuleRuntime, deps: WorkerDeps, deadline: RunDeadline, signal: AbortSignal): Promise<RunOutcome> {
  const lock = deps.referrersLock ?? processLock;
  if (task.operation === 'deletion') {
    // A reconcile deletes tags the source no longer has, each checked just before (drift-deletion.ts);
    // a webhook's deletion follows an artifact deleted at the source: by digest, as Harbor does.
    // Either way the referrers the replicator pushed for that digest go first (task-referrers.ts).
    const referrers = { store: deps.store, lock };
    if ((await deps.store.getExecution(task.executionId))?.trigger === 'reconcile') return { bytes: 0, ...(await deleteDriftedTags(task, rt, signal, referrers)) };
    if (!task.digest) throw new ReplicatorError('TASK_INVALID', 'a deletion task needs a digest');
    const gone = await deleteTaskReferrers(task, rt, referrers, signal);
    const existed = await rt.destinationClient.deleteManifest(task.destination.repository, task.digest, signal);
    const also = gone > 0 ? ` (and ${gone} referrer(s) the replicator had copied)` : '';
    return { bytes: 0, text: `${existed ? 'deleted' : 'already gone'}${also}` };
  }
  // Harbor wants the project first, ECR the repository (create_repositories); the runtime does
  // each once, not once per task.
  await rt.ensureDestinationRepository?.(task.destination.repository);
  const { rule } = rt;
  // With override off, the tag is asked again right before the copy decides (see PlannedDestinations).
  const seen = deps.planned?.take(task.executionId, task.id);
  const results = await copyArtifact(
    {
      operation: 'copy',
      source: { ...task.source, host: rt.sourceClient.host, digest: task.digest },
      destination: { ...task.destination, host: rt.destinationClient.host },
    },
    { source: rt.sourceClient, destination: rt.destinationClient },
    {
      override: rule.override,
      destinationTags: rule.override ? seen : undefined,
      chunkSize: rt.uploadChunkSize,
      bytesPerSecond: rt.bytesPerSecond,
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
  const moved = results.filter((r) => r.superseded).map((r) => `tag ${r.superseded!.tag} ${r.superseded!.by ? `moved to ${r.superseded!.by}` : 'was deleted at the source'}`);
  // Signatures, SBOMs and attestations follow the image (the rule's `referrers`, on by default).
  const referrers = rule.referrers
    ? await copyTaskReferrers(task, rt, { store: deps.store, lock, locations: deps.locations, onEvent: (event) => deps.onEvent?.({ kind: 'referrer', task, event }) }, results, signal)
    : undefined;
  const text = moved.length
    ? `${moved.join('; ')}; superseded (the planned digest was pushed by digest only)`
    : results.every((r) => r.status === 'in_sync') && !referrers?.counts.copied
      ? 'in sync'
      : skipped
        ? `skipped: ${skipped.reason}`
        : undefined;
  const c = referrers?.counts;
  const followed = c && c.copied + c.in_sync > 0 ? `referrers: ${c.copied} copied, ${c.in_sync} in sync` : undefined;
  const kept = referrers?.kept.length ? `kept at the destination (another digest, not the replicator's): ${referrers.kept.join(', ')}` : undefined;
  const said = [text, followed, kept].filter(Boolean).join('; ');
  return { bytes, ...(said ? { text: said } : {}), ...(referrers ? { referrers } : {}) };
}
