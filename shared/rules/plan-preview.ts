import { planRule, type PlanItem } from './plan.js';
import type { RuleRuntime } from './rule-runtime.js';

/** Artifacts a preview lists at most; the plan may hold more (`truncated`). */
export const PLAN_PREVIEW_ITEMS_MAX = 200;
/** Errors a preview lists at most (their count goes on). */
export const PLAN_PREVIEW_ERRORS_MAX = 50;
/** How long a preview may list the source (under API Gateway's 29 s limit). */
export const PLAN_PREVIEW_TIMEOUT_MS = 20_000;

/** A rule's plan as the API shows it: the first artifacts it would copy, bounded in count and time. */
export interface PlanPreview {
  rule: string;
  source: string;
  destination: string;
  items: PlanItem[];
  /** Artifacts selected that cannot be copied (their destination cannot be named, or an invalid name). */
  errors: Array<{ what: string; code: string; error: string }>;
  /** What was seen before the preview ended: whole when `truncated` is false, a lower bound otherwise. */
  counts: { items: number; excluded: number; errors: number };
  /** The plan goes on past what is shown: more than `itemsLimit` artifacts, or the time ran out. */
  truncated: boolean;
  /** Why it stopped early: `items` (the cap) or `time`. */
  truncatedBy?: 'items' | 'time';
  itemsLimit: number;
}

/**
 * Plans a rule without copying anything, as `run --dry-run` does, but stops at `maxItems`
 * artifacts or after `timeoutMs`, whichever comes first: an API answer must stay small and
 * quick whatever the size of the source.
 */
export async function previewPlan(rt: RuleRuntime, opts: { maxItems?: number; timeoutMs?: number } = {}): Promise<PlanPreview> {
  const maxItems = opts.maxItems ?? PLAN_PREVIEW_ITEMS_MAX;
  const preview: PlanPreview = {
    rule: rt.rule.name,
    source: rt.source.name,
    destination: rt.destination.name,
    items: [],
    errors: [],
    counts: { items: 0, excluded: 0, errors: 0 },
    truncated: false,
    itemsLimit: maxItems,
  };
  const stop = new AbortController();
  const events = planRule(rt.planInput(stop.signal))[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  // A listing request may not answer its signal at once: the deadline does not wait for it.
  const deadline = new Promise<'time'>((resolve) => (timer = setTimeout(() => resolve('time'), opts.timeoutMs ?? PLAN_PREVIEW_TIMEOUT_MS)));
  try {
    for (;;) {
      const next = await Promise.race([events.next(), deadline]);
      if (next === 'time') {
        preview.truncatedBy = 'time';
        break;
      }
      if (next.done) break;
      const e = next.value;
      if (e.kind === 'excluded') preview.counts.excluded += 1;
      else if (e.kind === 'error') {
        preview.counts.errors += 1;
        if (preview.errors.length < PLAN_PREVIEW_ERRORS_MAX) preview.errors.push({ what: e.what, code: e.code, error: e.error });
      } else if (preview.items.length < maxItems) {
        preview.counts.items += 1;
        preview.items.push(e.item);
      } else {
        preview.truncatedBy = 'items';
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    stop.abort();
    // Ends the listing; a next() still pending settles on its own (its rejection was seen by the race).
    events.return?.(undefined).catch(() => {});
  }
  preview.truncated = preview.truncatedBy !== undefined;
  return preview;
}
