import type { BlobLocations } from '../copy/blob-locations.js';
import type { CopyResult } from '../copy/image-copy.js';
import type { KeyedLock } from '../copy/keyed-lock.js';
import { removeFromReferrersIndex } from '../copy/referrer-index.js';
import { copyReferrers, noReferrers, ReferrerFailedError, type ReferrerEvent, type ReferrersOutcome } from '../copy/referrers.js';
import { isDigest } from '../registry/names.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import type { Accessory } from '../sources/source.js';
import type { RecordedReferrer, ReferrerCounts, ReferrerTarget, Task } from './model.js';
import type { TaskStore } from './ports.js';

/** What a copy task's referrers came to. */
export interface TaskReferrerOutcome {
  counts: ReferrerCounts;
  /** Digests this run pushed. */
  digests: string[];
  /** Destination cosign tags kept at another digest (not the replicator's). */
  kept: string[];
}

/**
 * Follows the referrers of what a copy task copied (each distinct top manifest: a task's tags
 * usually share one): found at the source, copied to the task's destination repository, the
 * destination's `sha256-<hex>` index merged where it has no referrers API; then recorded under
 * the subject (a deletion of the subject deletes only those). Harbor's accessories come with the
 * task (its listing), else are asked of Harbor's API. Failures, after the others were copied:
 * REFERRER_FAILED naming them, retried with the task when every cause may pass; the image itself
 * stays copied, and the next run copies only what is missing.
 */
export async function copyTaskReferrers(
  task: Task,
  rt: RuleRuntime,
  deps: { store: TaskStore; lock: KeyedLock; locations?: BlobLocations | undefined; onEvent?: ((e: ReferrerEvent) => void) | undefined },
  results: readonly CopyResult[],
  signal: AbortSignal | undefined,
): Promise<TaskReferrerOutcome> {
  const tops = new Map<string, NonNullable<CopyResult['manifest']>>();
  for (const r of results) if (r.status !== 'skipped' && r.manifest) tops.set(r.manifest.digest, r.manifest);
  const total: TaskReferrerOutcome = { counts: noReferrers(), digests: [], kept: [] };
  const failures: ReferrersOutcome['failures'] = [];
  const source = { client: rt.sourceClient, repository: task.source.repository };
  const destination = { client: rt.destinationClient, repository: task.destination.repository };
  for (const top of tops.values()) {
    const target: ReferrerTarget = { host: destination.client.host, repository: destination.repository, subject: top.digest };
    const ours = new Set((await deps.store.recordedReferrers(target)).map((r) => r.digest));
    let accessories: Accessory[] | undefined;
    // Harbor's accessories belong to the artifact as listed (a `platforms` narrowing makes another top).
    if (top.digest === task.digest) {
      try {
        accessories = task.accessories ?? (rt.sourceHarbor ? await rt.sourceHarbor.accessories(task.source.repository, top.digest, signal) : undefined);
      } catch (err) {
        failures.push({ what: `Harbor's accessories of ${top.digest}`, error: err });
        total.counts.failed += 1;
      }
    }
    const outcome = await copyReferrers(top, {
      source,
      destination,
      tags: () => rt.referrerTags.get(rt.sourceClient, task.source.repository, signal),
      accessories,
      lock: deps.lock,
      ours: (digest) => ours.has(digest),
      image: { chunkSize: rt.uploadChunkSize, bytesPerSecond: rt.bytesPerSecond, locations: deps.locations },
      signal,
      onEvent: deps.onEvent,
    });
    if (outcome.copied.length > 0) {
      await deps.store.recordReferrers(
        target,
        outcome.copied.map((c) => ({ digest: c.digest, subject: c.subject, depth: c.depth, ...(c.tag ? { tag: c.tag } : {}) })),
      );
    }
    total.counts.copied += outcome.counts.copied;
    total.counts.in_sync += outcome.counts.in_sync;
    total.counts.failed += outcome.counts.failed;
    total.digests.push(...outcome.copied.map((c) => c.digest));
    total.kept.push(...outcome.kept);
    failures.push(...outcome.failures);
  }
  if (failures.length > 0) {
    const subject = `${task.source.repository}${task.source.tags[0] ? `:${task.source.tags[0]}` : ''}@${task.digest ?? [...tops.keys()][0] ?? '?'}`;
    throw new TaskReferrersError(subject, { counts: total.counts, copied: [], failures, kept: total.kept }, total.digests);
  }
  return total;
}

/** REFERRER_FAILED for a task, with what its run did copy (recorded with the task all the same). */
export class TaskReferrersError extends ReferrerFailedError {
  constructor(
    subject: string,
    outcome: ReferrersOutcome,
    readonly digests: string[],
  ) {
    super(subject, outcome);
  }
}

/**
 * Before a subject is deleted at the destination (a webhook's deletion, a reconcile's): the
 * referrers the replicator pushed there for it are deleted, deepest first, their entries removed
 * from the `sha256-<hex>` indexes (foreign entries stay; an index left empty goes), and their
 * record forgotten. Referrers it did not push are not touched. Returns how many were deleted.
 */
export async function deleteTaskReferrers(
  task: Pick<Task, 'digest' | 'destination'>,
  rt: Pick<RuleRuntime, 'destinationClient'>,
  deps: { store: TaskStore; lock: KeyedLock },
  signal?: AbortSignal,
): Promise<number> {
  if (!task.digest || !isDigest(task.digest)) return 0;
  const dst = rt.destinationClient;
  const repository = task.destination.repository;
  const target: ReferrerTarget = { host: dst.host, repository, subject: task.digest };
  const recorded = (await deps.store.recordedReferrers(target)).filter((r) => isDigest(r.digest) && isDigest(r.subject));
  if (recorded.length === 0) return 0;
  // Each index first (it never names a deleted manifest), then the manifests, deepest first.
  const bySubject = new Map<string, RecordedReferrer[]>();
  for (const r of recorded) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r]);
  for (const [subject, list] of bySubject) {
    await removeFromReferrersIndex(dst, repository, subject, list.map((r) => r.digest), { lock: deps.lock, signal });
  }
  let deleted = 0;
  for (const r of [...recorded].sort((a, b) => b.depth - a.depth)) {
    if (await dst.deleteManifest(repository, r.digest, signal)) deleted += 1;
    await deps.store.forgetReferrers(target, [r.digest]);
  }
  return deleted;
}
