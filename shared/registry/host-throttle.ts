import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './backoff.js';

/**
 * A host's throttling as every copier sees it: after a 429 (or Docker Hub's
 * `ratelimit-remaining: 0`) nobody calls the host before `until`; then one request, the probe,
 * goes alone, and its answer either lifts the throttle or extends it.
 */
export interface ThrottleRecord {
  /** No request before this (epoch ms). */
  until: number;
  /** Throttled answers in a row (the exponent of the backoff without `Retry-After`). */
  level: number;
  /** The copier whose request is the probe, until `probeExpires` (a crashed prober frees it). */
  probeOwner?: string | undefined;
  probeExpires?: number | undefined;
}

/**
 * Where throttle records live: in memory for one process, in the table for every Lambda copier
 * (see adapters/aws/dynamodb-limits.ts). Writes are compare-and-set on the record as read, so
 * two copiers never both take the probe.
 */
export interface ThrottleStore {
  read(host: string): Promise<Versioned<ThrottleRecord> | undefined>;
  /** Writes `next` when the record is still at `version` (undefined: still absent). False otherwise. */
  write(host: string, next: ThrottleRecord, version: number | undefined): Promise<boolean>;
  /** Removes the record when it is still at `version`. */
  clear(host: string, version: number): Promise<boolean>;
}

export interface Versioned<T> {
  value: T;
  version: number;
}

/** One process's throttle records. */
export class MemoryThrottleStore implements ThrottleStore {
  private readonly records = new Map<string, Versioned<ThrottleRecord>>();

  async read(host: string): Promise<Versioned<ThrottleRecord> | undefined> {
    const r = this.records.get(host);
    return r ? { value: { ...r.value }, version: r.version } : undefined;
  }

  async write(host: string, next: ThrottleRecord, version: number | undefined): Promise<boolean> {
    const r = this.records.get(host);
    if (r?.version !== version) return false;
    this.records.set(host, { value: { ...next }, version: (version ?? 0) + 1 });
    return true;
  }

  async clear(host: string, version: number): Promise<boolean> {
    if (this.records.get(host)?.version !== version) return false;
    this.records.delete(host);
    return true;
  }
}

/** How a response bears on the host's throttle. */
export type ThrottleOutcome = 'throttled' | 'ok' | 'other';

/** The right to send the probe request; give it back through `observe`. */
export interface ProbeTicket {
  host: string;
}

export interface HostThrottleOptions {
  clock?: Clock;
  /** The first backoff without `Retry-After`; doubles per throttled answer in a row. */
  baseMs?: number;
  /** Cap of that backoff (the 60 s). */
  maxMs?: number;
  /** How long a copier trusts what it last read of a host (table reads per host and copier). */
  cacheMs?: number;
  /** How long a probe may take before another copier may probe (a prober that died). */
  probeLeaseMs?: number;
}

/**
 * Holds requests to throttled hosts, across every copier sharing the store. A request passes
 * `gate` (waits out `until`; after it, only the probe passes) and reports its answer to
 * `observe`. Throttled answers to requests sent before the throttle began only push `until`
 * further (their `Retry-After`); the level rises once per probe, so a burst of 429s does not
 * jump the backoff to its cap.
 */
export class HostThrottle {
  private readonly clock: Clock;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly cacheMs: number;
  private readonly probeLeaseMs: number;
  private readonly owner = randomUUID();
  private readonly seen = new Map<string, { at: number; record: Versioned<ThrottleRecord> | undefined }>();

  constructor(
    private readonly store: ThrottleStore,
    opts: HostThrottleOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.baseMs = opts.baseMs ?? 1_000;
    this.maxMs = opts.maxMs ?? 60_000;
    this.cacheMs = opts.cacheMs ?? 0;
    this.probeLeaseMs = opts.probeLeaseMs ?? 30_000;
  }

  private async look(host: string, fresh = false): Promise<Versioned<ThrottleRecord> | undefined> {
    const now = this.clock.now();
    const cached = this.seen.get(host);
    if (!fresh && cached && now - cached.at < this.cacheMs) return cached.record;
    const record = await this.store.read(host);
    this.seen.set(host, { at: now, record });
    return record;
  }

  /**
   * Waits until `host` may be called. Returns a probe ticket when this request is the one that
   * tests a throttled host; the caller must pass it to `observe`.
   */
  async gate(host: string, signal?: AbortSignal): Promise<ProbeTicket | undefined> {
    for (;;) {
      signal?.throwIfAborted();
      const r = await this.look(host);
      if (!r) return undefined;
      const now = this.clock.now();
      if (now < r.value.until) {
        // Sleep to `until`, but look again within cacheMs: the probe may lift it sooner elsewhere.
        await this.clock.sleep(Math.min(r.value.until - now, Math.max(this.cacheMs, 50)), signal);
        continue;
      }
      const probing = r.value.probeOwner !== undefined && (r.value.probeExpires ?? 0) > now;
      if (!probing) {
        const taken = await this.store.write(host, { ...r.value, probeOwner: this.owner, probeExpires: now + this.probeLeaseMs }, r.version);
        this.seen.delete(host);
        if (taken) return { host };
        continue;
      }
      // Someone else's probe is out: wait for its answer.
      await this.clock.sleep(Math.max(this.cacheMs, 100), signal);
      this.seen.delete(host);
    }
  }

  /** Records a request's answer; `retryAfterMs` when the host said when to come back. */
  async observe(host: string, outcome: ThrottleOutcome, retryAfterMs: number | undefined, probe: ProbeTicket | undefined): Promise<void> {
    if (outcome === 'ok' && !probe) return; // the common case: no store access at all
    for (let tries = 0; tries < 8; tries++) {
      const r = await this.look(host, true);
      const now = this.clock.now();
      if (outcome === 'throttled') {
        const level = probe || !r ? (r?.value.level ?? 0) + 1 : r.value.level;
        const wait = retryAfterMs ?? Math.min(this.maxMs, this.baseMs * 2 ** (level - 1));
        const until = Math.max(r?.value.until ?? 0, now + wait);
        if (r && !probe && until === r.value.until) return; // already throttled at least as long
        const next: ThrottleRecord = { until, level, ...(probe ? {} : { probeOwner: r?.value.probeOwner, probeExpires: r?.value.probeExpires }) };
        if (await this.store.write(host, next, r?.version)) return this.forget(host);
        continue;
      }
      if (!r || r.value.probeOwner !== this.owner) return this.forget(host);
      // Our probe: a good answer lifts the throttle; anything else frees the probe for another try.
      const done = outcome === 'ok' ? await this.store.clear(host, r.version) : await this.store.write(host, { until: r.value.until, level: r.value.level }, r.version);
      if (done) return this.forget(host);
    }
    this.forget(host);
  }

  private forget(host: string): void {
    this.seen.delete(host);
  }
}

/**
 * Docker Hub's `ratelimit-remaining: N;w=SECONDS`: N, or undefined when absent or unreadable.
 * Zero means the next pull is refused until the window moves.
 */
export function rateLimitRemaining(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+)/.exec(value);
  return m ? Number(m[1]) : undefined;
}
