import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Spaces requests to a registry at most `perSecond` apart on average, with a burst of one
 * second's worth (a token bucket). Shared by every request of one registry client.
 */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly perSecond: number) {
    this.tokens = Math.max(1, perSecond);
  }

  /** Waits for a token. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(Math.max(1, this.perSecond), this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(((1 - this.tokens) / this.perSecond) * 1000, undefined, signal ? { signal } : undefined);
    }
  }
}
