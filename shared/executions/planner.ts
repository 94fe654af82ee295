import pLimit from 'p-limit';
import type { Queue, TaskStore } from './ports.js';
import type { ManifestHead } from '../registry/client.js';
import type { RuleConfig } from '../rules/config-schema.js';
import { RuleFilter } from '../rules/filters.js';
import { destinationRepository, pathRuleOf, DestinationNameError } from '../rules/destination.js';
import { planRule, type PlanEvent, type PlanItem } from '../rules/plan.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import type { TaskMessage } from './messages.js';
import type { NewTask } from './model.js';
import { isReferrerTag } from '../sources/referrer-tags.js';
import { isIndex } from '../registry/media-types.js';
import { listReferrers } from '../registry/referrers-api.js';
import type { Accessory } from '../sources/source.js';
import type { PlannedDestinations } from './planned-destinations.js';


/** What planning did. */
export interface PlanSummary {
  total: number;
  queued: number;
  inSync: number;
  excluded: number;
  errors: number;
  /** A reconcile's deletion tasks (destination tags the source no longer has). */
  deletions?: number;
}

/** Told, for each planned artifact, what the destination answered for each tag (or its digest), in order; undefined: not there (or not known). */
export type OnChecked = (item: PlanItem, found: ReadonlyArray<ManifestHead | undefined>) => void;

/** Tasks written (and their destinations checked) per batch. */
const BATCH = 100;
const HEAD_CONCURRENCY = 32;

/**
 * Whether a planned artifact is already where it should be: one HEAD per destination tag
 * (or its digest when untagged). Harbor's rules: equal digest, in sync; another digest with
 * override off, skipped (a success, reported).
 */
async function settledAtDestination(
  item: PlanItem,
  heads: Map<string, Promise<ManifestHead | undefined>>,
  head: (repository: string, ref: string) => Promise<ManifestHead | undefined>,
  override: boolean,
  onChecked?: OnChecked,
  /** Filled with what each destination tag named (undefined: absent), for the task's copy. */
  seen?: Map<string, string | undefined>,
): Promise<{ text: string; mediaType: string | undefined } | undefined> {
  const digest = item.source.digest;
  if (!digest) {
    onChecked?.(item, []);
    return undefined;
  }
  const refs = item.destination.tags.length ? item.destination.tags : [digest];
  // Every tag's HEAD was started when the filters kept the artifact (prefetch): wait for all.
  const results = await Promise.allSettled(
    refs.map((ref) => {
      const key = `${item.destination.repository}:${ref}`;
      const found = heads.get(key) ?? head(item.destination.repository, ref);
      heads.delete(key);
      return found;
    }),
  );
  onChecked?.(item, results.map((r) => (r.status === 'fulfilled' ? r.value : undefined)));
  let skipped: string | undefined;
  let mediaType: string | undefined;
  for (const [i, r] of results.entries()) {
    if (r.status === 'fulfilled' && refs[i] !== digest) seen?.set(refs[i]!, r.value?.digest);
  }
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') throw r.reason;
    const found = r.value;
    if (!found) return undefined;
    if (found.digest === digest) {
      mediaType = found.mediaType;
      continue;
    }
    if (override) return undefined;
    skipped = `skipped: destination ${refs[i]} is ${found.digest} and override is off`;
  }
  return { text: skipped ?? 'in sync', mediaType };
}

/**
 * Whether an artifact in sync at the destination may still have referrers to copy (a signature
 * added after the image was copied, one that failed last time): then its task is queued all the
 * same, and the copier copies only what is missing. Known without a request where it can be:
 * Harbor's accessories came with the listing, a registry's referrer tags with its tag list (an
 * index: any referrer tag in the repository, its children may be named); a source serving the
 * referrers API is asked about this subject (an index: queued, its children are not known here).
 */
async function mayHaveReferrers(item: PlanItem, mediaType: string | undefined, runtime: RuleRuntime, signal?: AbortSignal): Promise<boolean> {
  const digest = item.source.digest;
  if (!runtime.rule.referrers || !digest) return false;
  if (item.source.accessories && item.source.accessories.length > 0) return true;
  const index = mediaType !== undefined && isIndex(mediaType);
  if (!runtime.sourceHarbor) {
    const tags = await runtime.referrerTags.get(runtime.sourceClient, item.source.repository, signal);
    if (tags.hasIndex(digest) || tags.suffixed(digest).length > 0 || (index && tags.size > 0)) return true;
  } else if (item.source.accessories && !index) {
    // Harbor listed the artifact's accessories: none.
    return false;
  }
  const listed = await listReferrers(runtime.sourceClient, item.source.repository, digest, { signal });
  return listed !== undefined && (index || listed.length > 0);
}

/** Identifies a task's artifact within an execution (to resume a planning). */
export function taskKey(source: { repository: string; tags: readonly string[]; digest?: string | undefined }): string {
  return `${source.repository}|${source.tags.join(',')}|${source.tags.length ? '' : (source.digest ?? '')}`;
}

function toTask(item: PlanItem): NewTask {
  return {
    operation: item.operation,
    source: { registry: item.source.registry, repository: item.source.repository, tags: item.source.tags },
    destination: { registry: item.destination.registry, repository: item.destination.repository, tags: item.destination.tags },
    digest: item.source.digest,
    ...(item.source.accessories ? { accessories: item.source.accessories } : {}),
  };
}

/**
 * Plans an execution, streaming: the rule's plan in batches of 100; each batch's destinations
 * checked (tags already in sync cost one HEAD and are recorded as succeeded, never queued); the
 * batch written to the store, then its open tasks queued (the queue's backpressure keeps the
 * planner a window ahead of the copies). A stop request ends planning early.
 */
export async function planExecution(
  executionId: string,
  runtime: RuleRuntime,
  deps: {
    store: TaskStore;
    taskQueue: Pick<Queue<TaskMessage>, 'send'>;
    /** Where to leave what the destination HEADs found, for this process's workers. */
    planned?: PlannedDestinations | undefined;
  },
  opts: {
    signal?: AbortSignal | undefined;
    onPlanned?: (s: PlanSummary) => void;
    /** Resuming an interrupted planning: artifacts already recorded (`taskKey`), and the next id. */
    skip?: ReadonlySet<string> | undefined;
    firstId?: number;
    /** Told what the destination answered for every planned artifact (a reconcile's drift), skipped ones included. */
    onChecked?: OnChecked | undefined;
  } = {},
): Promise<PlanSummary> {
  const summary: PlanSummary = { total: 0, queued: 0, inSync: 0, excluded: 0, errors: 0 };
  const limit = pLimit(HEAD_CONCURRENCY);
  /** Planned events, and artifacts recorded before a resume (only checked, for `onChecked`). */
  let batch: Array<PlanEvent | { kind: 'recorded'; item: PlanItem }> = [];
  let nextId = opts.firstId ?? 1;
  // Destination HEADs start as soon as the filters keep an artifact (see PlanInput.onSelected).
  const heads = new Map<string, Promise<ManifestHead | undefined>>();
  const head = (repository: string, ref: string) =>
    limit(() => runtime.destinationClient.headManifest(repository, ref, opts.signal));
  const prefetch = (d: { repository: string; tags: readonly string[] }) => {
    for (const tag of d.tags) {
      const p = head(d.repository, tag);
      p.catch(() => {}); // awaited (and reported) by settledAtDestination
      heads.set(`${d.repository}:${tag}`, p);
    }
  };

  const flush = async () => {
    const seen = batch.map(() => new Map<string, string | undefined>());
    const tasks = await Promise.all(
      batch.map((e, i) =>
        (async (): Promise<NewTask | undefined> => {
          if (e.kind === 'error') {
            // The destination cannot take this name: an error of this task, recorded as such.
            return {
              operation: 'copy',
              source: { registry: runtime.source.name, repository: e.repository, tags: e.tags },
              destination: { registry: runtime.destination.name, repository: '', tags: [] },
              digest: e.digest,
              status: 'Error',
              statusText: `${e.code}: ${e.error}`,
              error: { code: e.code, message: e.error },
            };
          }
          if (e.kind === 'recorded') {
            await settledAtDestination(e.item, heads, head, runtime.rule.override, opts.onChecked);
            return undefined;
          }
          if (e.kind !== 'item') return undefined;
          const settled = await settledAtDestination(e.item, heads, head, runtime.rule.override, opts.onChecked, seen[i]!);
          if (!settled) return toTask(e.item);
          if (settled.text === 'in sync' && (await mayHaveReferrers(e.item, settled.mediaType, runtime, opts.signal))) return toTask(e.item);
          return { ...toTask(e.item), status: 'Success', statusText: settled.text };
        })(),
      ),
    );
    batch = [];
    const kept = tasks.flatMap((t, i) => (t ? [{ task: t, seen: seen[i]! }] : []));
    if (kept.length === 0) return; // a resumed planning's artifacts recorded before: checked only
    const created = await deps.store.addTasks(executionId, nextId, kept.map((k) => k.task));
    nextId += created.length;
    const open = created.filter((t) => t.status === 'Pending');
    if (deps.planned) {
      created.forEach((t, i) => {
        const k = kept[i];
        // Only for the task just written (an id a racing planner had already used keeps its own task).
        const same = k && t.destination.repository === k.task.destination.repository && t.destination.tags.join() === k.task.destination.tags.join();
        if (t.status === 'Pending' && same && k.seen.size) deps.planned!.record(executionId, t.id, k.seen);
      });
    }
    summary.total += created.length;
    summary.queued += open.length;
    summary.inSync += created.filter((t) => t.status === 'Success').length;
    summary.errors += created.filter((t) => t.status === 'Error').length;
    opts.onPlanned?.({ ...summary });
    await deps.taskQueue.send(open.map((t) => ({ executionId, taskId: t.id })));
  };

  for await (const e of planRule({ ...runtime.planInput(opts.signal), onSelected: prefetch })) {
    if (opts.signal?.aborted) break;
    if (e.kind === 'excluded') {
      summary.excluded += 1;
      continue;
    }
    if (opts.skip && e.kind === 'item' && opts.skip.has(taskKey(e.item.source))) {
      if (!opts.onChecked) continue;
      batch.push({ kind: 'recorded', item: e.item });
    } else {
      batch.push(e);
    }
    if (batch.length >= BATCH) await flush();
  }
  if (batch.length > 0 && !opts.signal?.aborted) await flush();
  return summary;
}

/** An artifact event (Harbor's webhook): one artifact, all its tags. */
export interface ArtifactEvent {
  operation: 'copy' | 'deletion';
  repository: string;
  digest: string;
  tags: string[];
  /** Its labels, when the source keeps them (Harbor); undefined when not known. */
  labels?: string[] | undefined;
  /** Harbor's accessories of it, when asked (undefined: the copier asks). */
  accessories?: Accessory[] | undefined;
}

/**
 * Plans one artifact of an event for a rule (webhook-triggered executions): the rule's filters
 * and names applied to that artifact alone. A push makes a copy task; a delete makes a deletion
 * task (by digest at the destination) only when the rule replicates deletions. Undefined when
 * the rule's filters leave it out.
 */
export function planArtifactEvent(
  rule: RuleConfig,
  event: ArtifactEvent,
  names: { source: string; destination: string; destinationType: Parameters<typeof pathRuleOf>[0] },
): { task: NewTask } | { excluded: string } {
  if (event.operation === 'deletion' && !rule.replicate_deletion) return { excluded: 'deletion not replicated (replicate_deletion is off)' };
  const filter = new RuleFilter(rule);
  const repo = filter.repository(event.repository);
  if (!repo.keep) return { excluded: repo.reason };
  if (event.labels === undefined && filter.filtersLabels) {
    // A deleted artifact's labels cannot be read: never delete on a guess.
    return { excluded: 'the rule filters on labels, and the labels of this artifact are not known (a deletion, or a source without labels)' };
  }
  // A referrer tag (cosign's `sha256-<hex>.sig`, the tag schema's `sha256-<hex>`) is never a
  // subject: it follows the artifact it names, copied with it.
  const tags = event.tags.filter((t) => !isReferrerTag(t));
  if (event.tags.length > 0 && tags.length === 0) {
    return { excluded: `${event.tags.join(', ')} follows its subject (a referrer tag): copied with it, never on its own` };
  }
  const verdict = filter.artifact({ repository: event.repository, tags, labels: event.labels });
  if (!verdict.keep) return { excluded: verdict.reason };
  const source = { registry: names.source, repository: event.repository, tags: verdict.tags };
  try {
    const dst = destinationRepository(event.repository, rule.dest_namespace, rule.dest_namespace_replace_count, pathRuleOf(names.destinationType));
    return {
      task: {
        operation: event.operation,
        source,
        destination: { registry: names.destination, repository: dst, tags: verdict.tags },
        digest: event.digest,
        ...(event.accessories && event.operation === 'copy' ? { accessories: event.accessories } : {}),
      },
    };
  } catch (err) {
    if (!(err instanceof DestinationNameError)) throw err;
    return {
      task: {
        operation: event.operation,
        source,
        destination: { registry: names.destination, repository: '', tags: [] },
        digest: event.digest,
        status: 'Error',
        statusText: `${err.code}: ${err.message}`,
        error: { code: err.code, message: err.message },
      },
    };
  }
}
