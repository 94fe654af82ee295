import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './backoff.js';

/**
 * A registry's `requests_per_second` and `max_concurrency` held across processes (every Lambda
 * copier): a token bucket and a set of transfer slots kept in the table. Set only when the
 * registry's config gives them explicitly; otherwise each process keeps its own limits.
 */
export interface BudgetStore {
  /**
   * Takes up to `want` tokens of `key`'s bucket (`perSecond` refill, `perSecond` burst, at least
   * one). Returns how many it got and, when none, how long until one is there.
   */
  takeTokens(key: string, perSecond: number, want: number): Promise<{ granted: number; waitMs: number }>;
  /** Takes a free slot of `key`'s `max` (or one whose holder's lease ran out); undefined when all are held. */
  acquireSlot(key: string, max: number, owner: string, leaseMs: number): Promise<number | undefined>;
  /** Extends a held slot's lease; false when it was lost (expired and taken by someone else). */
  renewSlot(key: string, slot: number, owner: string, leaseMs: number): Promise<boolean>;
  releaseSlot(key: string, slot: number, owner: string): Promise<void>;
}

/** Something that hands out request tokens (a local RateLimiter, or SharedRateLimiter). */
export interface TokenSource {
  take(signal?: AbortSignal): Promise<void>;
}

/**
 * `requests_per_second` across copiers: tokens are taken from the shared bucket a few at a time
 * (a tenth of a second's worth, at least one) and spent within a second or dropped, so the sum
 * over every copier stays under the rate plus one burst.
 */
export class SharedRateLimiter implements TokenSource {
  private held = 0;
  private heldUntil = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly store: BudgetStore,
    private readonly key: string,
    private readonly perSecond: number,
    private readonly clock: Clock = systemClock,
  ) {}

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.held > 0 && this.clock.now() < this.heldUntil) {
        this.held -= 1;
        return;
      }
      // One refill in flight per process; the others wait for it.
      this.pending ??= this.refill(signal).finally(() => (this.pending = undefined));
      await this.pending;
    }
  }

  private async refill(signal?: AbortSignal): Promise<void> {
    const want = Math.max(1, Math.floor(this.perSecond / 10));
    const { granted, waitMs } = await this.store.takeTokens(this.key, this.perSecond, want);
    if (granted > 0) {
      this.held = granted;
      this.heldUntil = this.clock.now() + 1_000;
      return;
    }
    await this.clock.sleep(Math.max(10, waitMs), signal);
  }
}

export interface SharedSlotsOptions {
  clock?: Clock;
  /** A holder that stops renewing (a killed Lambda) loses its slot after this. */
  leaseMs?: number;
  /** Waits between tries while every slot is held (jittered, doubling up to the cap). */
  minWaitMs?: number;
  maxWaitMs?: number;
}

/**
 * `max_concurrency` across copiers: a blob transfer holds one of `max` slots in the table for its
 * whole length, renewing its lease meanwhile; a copier that dies frees its slot when the lease
 * runs out.
 */
export class SharedSlots {
  private readonly owner = randomUUID();
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly minWaitMs: number;
  private readonly maxWaitMs: number;

  constructor(
    private readonly store: BudgetStore,
    private readonly key: string,
    private readonly max: number,
    opts: SharedSlotsOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.minWaitMs = opts.minWaitMs ?? 100;
    this.maxWaitMs = opts.maxWaitMs ?? 2_000;
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const owner = `${this.owner}:${randomUUID()}`;
    let slot: number | undefined;
    for (let wait = this.minWaitMs; slot === undefined; wait = Math.min(this.maxWaitMs, wait * 2)) {
      signal?.throwIfAborted();
      slot = await this.store.acquireSlot(this.key, this.max, owner, this.leaseMs);
      if (slot === undefined) await this.clock.sleep(wait / 2 + Math.random() * (wait / 2), signal);
    }
    const held = slot;
    const renew = setInterval(() => void this.store.renewSlot(this.key, held, owner, this.leaseMs).catch(() => undefined), this.leaseMs / 3);
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.store.releaseSlot(this.key, held, owner).catch(() => undefined);
    }
  }
}
