import type { LocalQueueFactory, LocalQueueOptions, Queue, Received } from '../../executions/ports.js';

interface Entry<T> {
  id: number;
  body: T;
  /** Not delivered before this time (a delay, or a delivery's visibility timeout). */
  visibleAt: number;
  receiveCount: number;
}

/** How the in-process queue behaves; SQS's semantics, scaled down. */
export interface MemoryQueueOptions<T> {
  /** A received message not acked within this is delivered again. */
  visibilityTimeoutMs?: number;
  /** After this many deliveries a message goes to the dead letters instead. */
  maxReceives?: number;
  /** `send` waits while this many messages are queued: planners stay one window ahead. */
  highWater?: number;
  onDeadLetter?: (body: T) => void;
  now?: () => number;
}

/**
 * The local Queue: at-least-once delivery, visibility timeout and redelivery, retry with a delay,
 * dead letters after N receives, and backpressure on `send` so a 10,000-task plan never sits in
 * memory. Messages are not durable: locally the store is the truth, and work left in a dead
 * process is found again from the store's Pending and Running tasks.
 */
export class MemoryQueue<T> implements Queue<T> {
  private readonly entries = new Map<number, Entry<T>>();
  private nextId = 1;
  private readonly waiters = new Set<() => void>();
  private readonly spaceWaiters = new Set<() => void>();
  readonly deadLetters: T[] = [];
  private readonly visibility: number;
  private readonly maxReceives: number;
  private readonly highWater: number;
  private readonly now: () => number;

  constructor(private readonly opts: MemoryQueueOptions<T> = {}) {
    this.visibility = opts.visibilityTimeoutMs ?? 5 * 60_000;
    this.maxReceives = opts.maxReceives ?? 5;
    this.highWater = opts.highWater ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Messages queued or in flight. */
  get size(): number {
    return this.entries.size;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  async send(messages: T[], delayMs = 0): Promise<void> {
    for (const body of messages) {
      while (this.entries.size >= this.highWater) await new Promise<void>((r) => this.spaceWaiters.add(r));
      const id = this.nextId++;
      this.entries.set(id, { id, body, visibleAt: this.now() + delayMs, receiveCount: 0 });
    }
    this.wake();
  }

  private take(max: number): Array<Received<T>> {
    const now = this.now();
    const out: Array<Received<T>> = [];
    for (const e of this.entries.values()) {
      if (out.length >= max) break;
      if (e.visibleAt > now) continue;
      if (e.receiveCount >= this.maxReceives) {
        this.remove(e.id);
        this.deadLetters.push(e.body);
        this.opts.onDeadLetter?.(e.body);
        continue;
      }
      e.receiveCount += 1;
      e.visibleAt = now + this.visibility;
      out.push({ body: e.body, receipt: `${e.id}.${e.receiveCount}`, receiveCount: e.receiveCount });
    }
    return out;
  }

  async receive(max: number, waitMs: number, signal?: AbortSignal): Promise<Array<Received<T>>> {
    const deadline = this.now() + waitMs;
    for (;;) {
      const got = this.take(max);
      if (got.length > 0 || signal?.aborted) return got;
      const left = deadline - this.now();
      if (left <= 0) return [];
      // Sleep until a send, a retry, the next message becoming visible, or the deadline.
      let next = left;
      for (const e of this.entries.values()) next = Math.min(next, Math.max(1, e.visibleAt - this.now()));
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, next);
        this.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  private find(receipt: string): Entry<T> | undefined {
    const [id, count] = receipt.split('.').map(Number);
    const e = this.entries.get(id!);
    // A receipt from an earlier delivery of a redelivered message is stale.
    return e && e.receiveCount === count ? e : undefined;
  }

  private remove(id: number): void {
    this.entries.delete(id);
    for (const w of [...this.spaceWaiters]) {
      this.spaceWaiters.delete(w);
      w();
    }
  }

  async ack(receipt: string): Promise<void> {
    const e = this.find(receipt);
    if (e) this.remove(e.id);
  }

  async extend(receipt: string, visibilityMs: number): Promise<void> {
    const e = this.find(receipt);
    if (e) e.visibleAt = this.now() + visibilityMs;
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    const e = this.find(receipt);
    if (!e) return;
    e.visibleAt = this.now() + delayMs;
    this.wake();
  }
}

/** The in-process queues of `run` and `serve`. */
export const newMemoryQueue: LocalQueueFactory = <T>(opts: LocalQueueOptions) => new MemoryQueue<T>(opts);
