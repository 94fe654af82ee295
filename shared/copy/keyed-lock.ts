import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicatorError, StoppedError } from '../errors.js';

/**
 * One holder at a time per key: what keeps two copies from losing each other's entries when they
 * update the same destination `sha256-<hex>` referrers index (read, merge, write). `run` waits
 * for the key (bounded) and holds it while `fn` runs.
 */
export interface KeyedLock {
  run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

/** A key's holders in this process, one after another (a promise chain per key, dropped when idle). */
export class MemoryKeyedLock implements KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    try {
      await waitFor(before, signal);
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

async function waitFor(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new StoppedError('stopped', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Short leases shared by processes that cannot see each other's memory (Lambda copiers): one
 * record per key, taken when absent or expired, renewed and released only by its owner. One class
 * per backend (adapters/aws/dynamodb-lease.ts).
 */
export interface LeaseStore {
  /** Takes `key` for `owner` until now + `leaseMs` when it is free or its lease ran out; false when held. */
  acquire(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Extends the lease; false when it is no longer `owner`'s. */
  renew(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives it back (only `owner`'s lease is removed). */
  release(key: string, owner: string): Promise<void>;
}

/** How long a leased lock waits and holds. */
export interface LeasedLockOptions {
  /** A holder that stops renewing (a killed copier) loses the key after this (default 30 s). */
  leaseMs?: number;
  /** Waiting for a held key gives up after this (default 60 s): LOCK_TIMEOUT, retried like a 5xx. */
  waitMs?: number;
}

/**
 * The in-process lock, then a lease in the table: callers of one process queue in memory (no
 * table traffic between them), and the lease orders processes. Waits poll with jittered backoff
 * (50 ms doubling to 1 s); the lease is renewed every third of its length while `fn` runs.
 */
export class LeasedKeyedLock implements KeyedLock {
  private readonly local = new MemoryKeyedLock();
  private readonly owner = randomUUID();

  constructor(
    private readonly store: LeaseStore,
    private readonly opts: LeasedLockOptions = {},
  ) {}

  run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.local.run(key, () => this.leased(key, fn, signal), signal);
  }

  private async leased<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const leaseMs = this.opts.leaseMs ?? 30_000;
    const deadline = Date.now() + (this.opts.waitMs ?? 60_000);
    const owner = `${this.owner}:${randomUUID()}`;
    for (let wait = 50; !(await this.store.acquire(key, owner, leaseMs)); wait = Math.min(1000, wait * 2)) {
      if (Date.now() >= deadline) throw new LockTimeoutError(key, this.opts.waitMs ?? 60_000);
      try {
        await sleep(wait / 2 + Math.random() * (wait / 2), undefined, { signal });
      } catch (err) {
        throw new StoppedError('stopped', { cause: err });
      }
    }
    const renew = setInterval(() => void this.store.renew(key, owner, leaseMs).catch(() => undefined), leaseMs / 3);
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.store.release(key, owner).catch(() => undefined);
    }
  }
}

/** A key stayed held longer than the wait allows. Retried (it is someone else's work in progress). */
export class LockTimeoutError extends ReplicatorError {
  override name = 'LockTimeoutError';
  readonly retryable = true;
  constructor(key: string, waitMs: number) {
    super('LOCK_TIMEOUT', `${key}: held by another copier for more than ${Math.round(waitMs / 1000)} s`);
  }
}
