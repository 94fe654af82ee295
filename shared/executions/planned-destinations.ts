/**
 * What the planner saw at the destination for the tasks it queued, handed to the workers of the
 * same process so a copy does not HEAD the destination tag a second time moments later (one
 * HEAD per destination tag per run, not two). Only in-process (the local runner): a worker
 * elsewhere asks the registry itself. A hint is taken once (a retried task asks again), and is
 * trusted only while fresh; the copy uses it only when the rule overrides, where a tag that
 * changed in between is overwritten anyway (with override off, the copy asks again).
 */
export class PlannedDestinations {
  private readonly seen = new Map<string, { tags: ReadonlyMap<string, string | undefined>; at: number }>();

  constructor(
    private readonly maxAgeMs = 60_000,
    /** Hints of tasks queued and not yet run; beyond this the oldest are dropped (their copies HEAD). */
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records, for a queued task, the digest each destination tag had when planned (undefined: absent). */
  record(executionId: string, taskId: number, tags: ReadonlyMap<string, string | undefined>): void {
    const key = `${executionId}/${taskId}`;
    this.seen.delete(key);
    this.seen.set(key, { tags, at: this.now() });
    if (this.seen.size > this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** The task's hint, once; undefined when there is none or it is stale. */
  take(executionId: string, taskId: number): ReadonlyMap<string, string | undefined> | undefined {
    const key = `${executionId}/${taskId}`;
    const hint = this.seen.get(key);
    this.seen.delete(key);
    return hint && this.now() - hint.at <= this.maxAgeMs ? hint.tags : undefined;
  }
}
