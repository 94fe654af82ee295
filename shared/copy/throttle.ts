import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Caps a byte stream at `bytesPerSecond` (Harbor's per-task `speed`, given in Kbps there). One
 * instance per task: all blobs of the task share the budget. Waits, never drops.
 */
export class Throttle {
  private readonly started = Date.now();
  private sent = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Accounts for `bytes` and waits as long as the stream is ahead of its budget. */
  async consume(bytes: number, signal?: AbortSignal): Promise<void> {
    this.sent += bytes;
    const due = (this.sent / this.bytesPerSecond) * 1000;
    const ahead = due - (Date.now() - this.started);
    if (ahead > 5) await sleep(ahead, undefined, signal ? { signal } : undefined);
  }
}
