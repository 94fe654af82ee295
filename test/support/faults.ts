// Fault injection for the "every execution ends" suite: a store and a queue that, from a seeded
// schedule, drop, repeat or delay writes (task moves, plannings, counter writes, enqueues, acks),
// and abandon workers (a claim whose worker is "killed": every later write of it is dropped).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskMove } from '../../shared/executions/transitions.js';
import type { MoveOutcome, Queue, Received, TaskStore } from '../../shared/executions/ports.js';

/** What may happen to one write. */
export type FaultKind = 'drop' | 'lost-ack' | 'repeat' | 'delay' | 'kill' | 'lost-message' | 'fail-send' | 'duplicate' | 'ack-lost' | 'counter-repeat' | 'counter-fail';

/** A deterministic source of faults: the same seed makes the same decisions in the same order. */
export class FaultSchedule {
  enabled = true;
  readonly injected: Record<string, number> = {};
  private state: number;

  constructor(
    readonly seed: number,
    /** Probability of each fault at each decision point. */
    private readonly rates: Partial<Record<FaultKind, number>>,
  ) {
    this.state = seed >>> 0 || 1;
  }

  /** mulberry32: small, fast, good enough to spread faults. */
  random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** The first of `kinds` that fires at this point, or undefined. */
  pick(...kinds: FaultKind[]): FaultKind | undefined {
    if (!this.enabled) return undefined;
    for (const k of kinds) {
      if (this.random() < (this.rates[k] ?? 0)) {
        this.injected[k] = (this.injected[k] ?? 0) + 1;
        return k;
      }
    }
    return undefined;
  }
}

/** The error a faulty write throws (the caller cannot tell whether it landed). */
export class InjectedFault extends Error {
  override name = 'InjectedFault';
}

/**
 * A TaskStore whose writes fail by the schedule: dropped (not applied, an error), lost-ack
 * (applied, then an error: the caller may repeat it), repeated (applied twice, as a retried
 * request whose first attempt landed), delayed; and claims whose worker is abandoned afterwards.
 */
export function faultyStore(inner: TaskStore, schedule: FaultSchedule): TaskStore {
  const killed = new Set<string>();
  const write = async <T>(apply: () => Promise<T>, kinds: FaultKind[] = ['drop', 'lost-ack', 'repeat', 'delay']): Promise<T> => {
    const f = schedule.pick(...kinds);
    if (f === 'delay') await sleep(Math.floor(schedule.random() * 30));
    if (f === 'drop') throw new InjectedFault('write dropped');
    const result = await apply();
    if (f === 'repeat') await apply().catch(() => undefined);
    if (f === 'lost-ack') throw new InjectedFault('write landed, its answer was lost');
    return result;
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const original = Reflect.get(target, prop, receiver) as unknown;
      if (typeof original !== 'function') return original;
      const fn = original.bind(target) as (...args: unknown[]) => Promise<unknown>;
      switch (prop) {
        case 'applyMove':
          return async (executionId: string, taskId: number, move: TaskMove): Promise<MoveOutcome> => {
            // An abandoned worker's later writes never arrive (the sweeper's expiry of its lease names its token too: that one does).
            if (move.kind !== 'expire' && move.expect.leaseToken && killed.has(move.expect.leaseToken)) throw new InjectedFault('worker killed');
            const r = (await write(() => fn(executionId, taskId, move))) as MoveOutcome;
            if (move.kind === 'claim' && r.applied && schedule.pick('kill')) killed.add(r.task.leaseToken!);
            return r;
          };
        case 'heartbeat':
          return async (executionId: string, taskId: number, token: string, until: number) => {
            if (killed.has(token)) throw new InjectedFault('worker killed');
            return write(() => fn(executionId, taskId, token, until));
          };
        case 'addTasks':
        case 'leasePlanning':
        case 'finishPlanning':
        case 'releasePlanning':
        case 'createExecution':
          return (...args: unknown[]) => write(() => fn(...args));
        default:
          return fn;
      }
    },
  });
}

/**
 * A queue whose sends and acks fail by the schedule: a message silently lost (its process died
 * with it), a send that fails (an error), a message delivered twice, an ack that never lands
 * (the message comes back after its visibility timeout).
 */
export class FaultyQueue<T> implements Queue<T> {
  constructor(
    private readonly inner: Queue<T> & { readonly size: number },
    private readonly schedule: FaultSchedule,
  ) {}

  get size(): number {
    return this.inner.size;
  }

  async send(messages: T[], delayMs?: number): Promise<void> {
    if (this.schedule.pick('fail-send')) throw new InjectedFault('send failed');
    for (const m of messages) {
      const f = this.schedule.pick('lost-message', 'duplicate');
      if (f === 'lost-message') continue;
      await this.inner.send(f === 'duplicate' ? [m, m] : [m], delayMs);
    }
  }

  receive(max: number, waitMs: number, signal?: AbortSignal): Promise<Array<Received<T>>> {
    return this.inner.receive(max, waitMs, signal);
  }

  async ack(receipt: string): Promise<void> {
    if (this.schedule.pick('ack-lost')) return;
    return this.inner.ack(receipt);
  }

  retry(receipt: string, delayMs: number): Promise<void> {
    return this.inner.retry(receipt, delayMs);
  }

  extend(receipt: string, visibilityMs: number): Promise<void> {
    return this.inner.extend(receipt, visibilityMs);
  }
}

/**
 * Counter writes of the DynamoDB store (`ADD` on `COUNT#` items) repeated (an SDK retry of a
 * non-idempotent ADD whose first attempt landed) or failed, on the wire: a middleware of the client.
 */
export function faultyCounterWrites(client: DynamoDBClient, schedule: FaultSchedule): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      // Marshalled or not, depending on where the document client's middleware sits.
      const sk = (args.input as { Key?: { SK?: string | { S?: string } } }).Key?.SK;
      const key = typeof sk === 'string' ? sk : sk?.S;
      const counter = /^Update(Item)?Command$/.test(context.commandName ?? '') && key?.startsWith('COUNT#');
      if (!counter) return next(args);
      const f = schedule.pick('counter-repeat', 'counter-fail');
      if (f === 'counter-fail') throw new InjectedFault('counter write failed');
      const result = await next(args);
      if (f === 'counter-repeat') await next(args).catch(() => undefined);
      return result;
    },
    { step: 'initialize', name: 'faultyCounterWrites' },
  );
}
