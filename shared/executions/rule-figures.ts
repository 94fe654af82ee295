import { FINAL_EXECUTION_STATUSES, type RuleFigures } from '../observability/telemetry.js';
import type { TaskStore } from './ports.js';

/** Executions of a rule read, newest first, to find the last one that ended (a page or two). */
const PAGE = 10;
const MAX_PAGES = 5;

/**
 * Per-rule figures for the metrics, from the store (the truth, whatever process did the work):
 * each rule's last execution that ended (its status and duration) and its last drift report.
 * The last *ended* one: a rule that fails each run keeps showing Failed while its next run is in
 * progress, so an alert on it does not resolve and fire again with every run.
 */
export async function ruleFigures(store: Pick<TaskStore, 'listExecutions' | 'lastDrift'>, rules: readonly string[]): Promise<RuleFigures[]> {
  return Promise.all(
    rules.map(async (rule) => {
      const [last, drift] = await Promise.all([lastEnded(store, rule), store.lastDrift(rule)]);
      return {
        rule,
        last: last && { status: last.status, seconds: Math.max(0, (Date.parse(last.endTime) - Date.parse(last.startTime)) / 1000) },
        drift: drift && { missing: drift.counts.missing, different: drift.counts.different, extra: drift.counts.extra },
      };
    }),
  );
}

async function lastEnded(store: Pick<TaskStore, 'listExecutions'>, rule: string) {
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const p = await store.listExecutions({ rule, limit: PAGE, cursor });
    for (const e of p.items) {
      const status = FINAL_EXECUTION_STATUSES.find((s) => s === e.status);
      if (status && e.endTime) return { status, startTime: e.startTime, endTime: e.endTime };
    }
    cursor = p.cursor;
    if (!cursor) break;
  }
  return undefined;
}
