import pLimit from 'p-limit';
import type { ManifestHead } from '../registry/client.js';
import type { PlanEvent } from '../rules/plan.js';
import { planRule } from '../rules/plan.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { DriftCollector } from './drift.js';
import type { TaskMessage } from './messages.js';
import type { DriftEntry, DriftReport } from './model.js';
import { planExecution, taskKey, type PlanSummary } from './planner.js';
import type { Queue, TaskStore } from './ports.js';

/**
 * A drift reconcile (trigger `reconcile`): a full run of the rule, which copies what events
 * missed (retags, lost webhooks: the normal planner, in-sync tags costing one HEAD per side),
 * with its drift measured on the way; for a rule with `replicate_deletion`, the destination tags
 * the source no longer has become deletion tasks (each checked again just before its delete, see
 * drift-deletion.ts); the drift is recorded for `GET /rules/{name}/drift`. Deletions and the
 * record come only after a whole listing: a planning stopped or failed leaves neither.
 */
export async function planReconcile(
  executionId: string,
  rt: RuleRuntime,
  deps: { store: TaskStore; taskQueue: Pick<Queue<TaskMessage>, 'send'>; now?: () => number },
  opts: {
    signal?: AbortSignal | undefined;
    onPlanned?: ((s: PlanSummary) => void) | undefined;
    skip?: ReadonlySet<string> | undefined;
    firstId?: number;
  } = {},
): Promise<PlanSummary> {
  const drift = new DriftCollector(rt.rule, rt.destination.type);
  const summary = await planExecution(executionId, observed(rt, drift), deps, { ...opts, onChecked: (item, found) => drift.checked(item, found) });
  if (opts.signal?.aborted) return summary;
  const deletions = (await drift.extras(rt.destinationClient, { source: rt.source.name, destination: rt.destination.name }, opts.signal)).filter(
    (t) => !opts.skip?.has(taskKey({ ...t.source, digest: t.digest })),
  );
  if (opts.signal?.aborted) return summary;
  if (deletions.length > 0) {
    const created = await deps.store.addTasks(executionId, (opts.firstId ?? 1) + summary.total, deletions);
    const open = created.filter((t) => t.status === 'Pending');
    summary.total += created.length;
    summary.queued += open.length;
    summary.deletions = created.length;
    await deps.taskQueue.send(open.map((t) => ({ executionId, taskId: t.id })));
  }
  opts.onPlanned?.({ ...summary });
  await deps.store.recordDrift(drift.report({ execution: executionId, takenAt: new Date((deps.now ?? Date.now)()).toISOString() }));
  return summary;
}

/** The rule's runtime with its lister observed by the drift collector. */
function observed(rt: RuleRuntime, drift: DriftCollector): RuleRuntime {
  const lister = drift.observe(rt.lister);
  return { ...rt, planInput: (signal) => ({ ...rt.planInput(signal), lister }) };
}

/** Destination HEADs at once, and artifacts planned ahead of their HEADs, in a dry run. */
const HEAD_CONCURRENCY = 32;
const WINDOW = 256;

/**
 * The drift of a rule, changing nothing (`run RULE --reconcile --dry-run`): the rule's plan, one
 * HEAD at the destination per planned tag, and, for a rule with `replicate_deletion`, the extra
 * tags with what a reconcile would do about each. Entries stream to `onEntry`; artifacts the
 * plan cannot name (`DESTINATION_NAME`, `INVALID_NAME`) go to `onError`, and make the check
 * incomplete.
 */
export async function measureDrift(
  rt: RuleRuntime,
  opts: {
    signal?: AbortSignal | undefined;
    onEntry?: ((e: DriftEntry) => void) | undefined;
    onError?: ((e: Extract<PlanEvent, { kind: 'error' }>) => void) | undefined;
    /** Told what the rule's filters left out, and why. */
    onExcluded?: ((e: Extract<PlanEvent, { kind: 'excluded' }>) => void) | undefined;
    now?: () => number;
  } = {},
): Promise<{ report: DriftReport; errors: number }> {
  const drift = new DriftCollector(rt.rule, rt.destination.type, opts.onEntry);
  const limit = pLimit(HEAD_CONCURRENCY);
  const head = (repository: string, ref: string) => limit(() => rt.destinationClient.headManifest(repository, ref, opts.signal));
  let window: Array<Promise<void>> = [];
  let errors = 0;
  for await (const e of planRule({ ...rt.planInput(opts.signal), lister: drift.observe(rt.lister) })) {
    if (e.kind === 'error') {
      errors += 1;
      opts.onError?.(e);
      continue;
    }
    if (e.kind === 'excluded') {
      opts.onExcluded?.(e);
      continue;
    }
    const item = e.item;
    const refs = item.destination.tags.length ? item.destination.tags : item.source.digest ? [item.source.digest] : [];
    const checked = Promise.all(refs.map((ref) => head(item.destination.repository, ref))).then((found: Array<ManifestHead | undefined>) => drift.checked(item, found));
    checked.catch(() => {}); // awaited (and reported) with its window; never unhandled if the listing fails first
    window.push(checked);
    if (window.length >= WINDOW) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  await drift.extras(rt.destinationClient, { source: rt.source.name, destination: rt.destination.name }, opts.signal);
  return { report: drift.report({ takenAt: new Date((opts.now ?? Date.now)()).toISOString() }), errors };
}
