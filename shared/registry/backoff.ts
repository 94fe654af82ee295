import { setTimeout as sleep } from 'node:timers/promises';

/** How hard to retry a request that failed with 429, 5xx or a broken connection. */
export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  maxAttempts: number;
  /** Delay before the first retry; doubles each time (full jitter applied). */
  baseDelayMs: number;
  /** Cap of the exponential delay. */
  maxDelayMs: number;
  /** A `Retry-After` longer than this fails the request instead of stalling the copy. */
  maxRetryAfterMs: number;
}

/** Defaults close to crane's and regclient's: five attempts over roughly 4 s of backoff. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 5 * 60_000,
};

/** The clock, injectable so tests can observe waits. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined),
};

/**
 * Backoff state shared by every request to one registry host: when the host says 429 with
 * `Retry-After`, or keeps failing, all requests to it wait, not only the one that failed
 * (regclient's per-host backoff). Success resets the failure count.
 */
export class HostBackoff {
  private failures = 0;
  private notBefore = 0;

  constructor(
    readonly policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    private readonly clock: Clock = systemClock,
    private readonly random: () => number = Math.random,
  ) {}

  /** True while the host may not be called yet (see `gate`). */
  waiting(): boolean {
    return this.notBefore > this.clock.now();
  }

  /** Waits until the host may be called again. */
  async gate(signal?: AbortSignal): Promise<void> {
    const wait = this.notBefore - this.clock.now();
    if (wait > 0) await this.clock.sleep(wait, signal);
  }

  /** Records a success: the next failure starts the exponential series again. */
  onSuccess(): void {
    this.failures = 0;
  }

  /**
   * Records a retryable failure and returns how long to wait before the next attempt:
   * `Retry-After` when the server gave one, else exponential backoff with full jitter.
   */
  onFailure(retryAfterMs?: number): number {
    this.failures += 1;
    let delay: number;
    if (retryAfterMs !== undefined) {
      delay = retryAfterMs;
    } else {
      const ceiling = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (this.failures - 1));
      // Full jitter, but never below half the ceiling so retries do spread out in time.
      delay = ceiling / 2 + this.random() * (ceiling / 2);
    }
    this.notBefore = Math.max(this.notBefore, this.clock.now() + delay);
    return delay;
  }
}

/** Process-wide backoff state per host (`scheme://host:port`), shared by all clients. */
export class HostStates {
  private readonly states = new Map<string, HostBackoff>();

  constructor(
    readonly policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The backoff state of one origin, created on first use. */
  get(origin: string): HostBackoff {
    let state = this.states.get(origin);
    if (!state) {
      state = new HostBackoff(this.policy, this.clock);
      this.states.set(origin, state);
    }
    return state;
  }
}
