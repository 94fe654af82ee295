import pLimit from 'p-limit';
import { ReplicatorError } from '../errors.js';
import type { KeyedLock } from '../copy/keyed-lock.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { RegistrySource } from '../sources/registry-source.js';
import type { Task } from './model.js';
import type { TaskStore } from './ports.js';
import { deleteTaskReferrers } from './task-referrers.js';

/** Destination HEADs at once while checking what else points at the digest. */
const HEAD_CONCURRENCY = 8;

/**
 * Deletes a reconcile's extra tags: destination tags the source no longer has, all at one
 * digest (see DriftCollector.extras). The distribution API can only delete a manifest by digest,
 * which removes every tag pointing at it (tag deletion is optional in OCI 1.1 and absent from
 * docker-registry 2.8), so just before the DELETE, in this order:
 *
 * 1. the task's tags are HEADed at the destination: those no longer at the digest are left out;
 *    none left, nothing to do;
 * 2. every other tag of the destination repository is HEADed: one at the digest keeps the
 *    manifest (deleting it would take that tag too);
 * 3. each tag is HEADed at the source, last: anything but a 404 keeps the manifest (a tag pushed
 *    again meanwhile is never deleted; an error fails the attempt, retried like a copy's).
 *
 * Then the referrers the replicator pushed for that digest (task-referrers.ts), and one DELETE
 * by digest. What was kept, and why, is the task's text; keeping is a success.
 */
export async function deleteDriftedTags(task: Task, rt: RuleRuntime, signal?: AbortSignal, referrers?: { store: TaskStore; lock: KeyedLock }): Promise<{ text: string }> {
  const digest = task.digest;
  if (!digest) throw new ReplicatorError('TASK_INVALID', 'a deletion task needs a digest');
  const repository = task.destination.repository;
  const dst = rt.destinationClient;

  const still: string[] = [];
  for (const tag of task.destination.tags) {
    if ((await dst.headManifest(repository, tag, signal))?.digest === digest) still.push(tag);
  }
  if (still.length === 0) return { text: `already gone: ${task.destination.tags.join(', ')} no longer at ${digest}` };

  const limit = pLimit(HEAD_CONCURRENCY);
  const checks: Array<Promise<string | undefined>> = [];
  for await (const a of new RegistrySource(dst).artifacts(repository, signal)) {
    for (const tag of a.tags) {
      if (task.destination.tags.includes(tag)) continue;
      checks.push(limit(async () => ((await dst.headManifest(repository, tag, signal))?.digest === digest ? tag : undefined)));
    }
  }
  const sharing = (await Promise.all(checks)).filter((t): t is string => t !== undefined);
  if (sharing.length > 0) {
    return { text: `kept: ${digest} is also tagged ${sharing.slice(0, 5).join(', ')}${sharing.length > 5 ? ', ...' : ''} at the destination (deleting the manifest would remove it too)` };
  }

  for (const tag of task.source.tags) {
    const head = await rt.sourceClient.headManifest(task.source.repository, tag, signal);
    if (head) return { text: `kept: ${tag} is at the source again (${head.digest})` };
  }

  const gone = referrers ? await deleteTaskReferrers(task, rt, referrers, signal) : 0;
  const existed = await dst.deleteManifest(repository, digest, signal);
  const also = gone > 0 ? ` (and ${gone} referrer(s) the replicator had copied)` : '';
  return { text: existed ? `deleted ${still.join(', ')} (${digest}): not at the source${also}` : `already gone: ${digest}${also}` };
}
