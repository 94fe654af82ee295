import { Cron } from 'croner';
import type { RuleConfig } from '../rules/config-schema.js';

/** The time source of the scheduler, injectable so tests never wait for wall time. */
export interface SchedulerClock {
  now(): number;
  setTimer(fn: () => void, ms: number): { cancel(): void };
}

/** Wall time, and timers that do not keep the process alive. */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** The longest sleep between checks (a changed clock or rule is seen within it). */
const MAX_SLEEP_MS = 60_000;

/** What a schedule starts: the rule's scheduled trigger, or its drift reconcile (`reconcile:`). */
export type ScheduledTrigger = 'scheduled' | 'reconcile';

interface Entry {
  rule: RuleConfig;
  trigger: ScheduledTrigger;
  cron: string;
  timezone: string;
  at: number;
  next: Cron;
}

/** The schedules of enabled rules: a scheduled trigger's cron, and a `reconcile:` cron. */
function schedulesOf(rules: readonly RuleConfig[]): Array<Omit<Entry, 'at' | 'next'>> {
  const out: Array<Omit<Entry, 'at' | 'next'>> = [];
  for (const rule of rules) {
    if (!rule.enabled) continue;
    const settings = rule.trigger.trigger_settings;
    if (rule.trigger.type === 'scheduled' && settings?.cron) out.push({ rule, trigger: 'scheduled', cron: settings.cron, timezone: settings.timezone ?? 'UTC' });
    if (rule.reconcile) out.push({ rule, trigger: 'reconcile', cron: rule.reconcile.cron, timezone: rule.reconcile.timezone ?? 'UTC' });
  }
  return out;
}

/**
 * Fires scheduled rules and drift reconciles: Harbor's 6-field cron (seconds first) or the
 * 5-field form, in the rule's IANA time zone (croner computes the next run). Each schedule's next
 * run is computed from the time it is armed, so runs missed while the process was down are not
 * replayed in a burst.
 */
export class Scheduler {
  private next = new Map<string, Entry>();
  private timer: { cancel(): void } | undefined;
  private stopped = false;

  constructor(
    private readonly fire: (rule: RuleConfig, trigger: ScheduledTrigger) => void,
    private readonly clock: SchedulerClock = systemClock,
  ) {}

  /** Sets the rules (enabled ones with a scheduled trigger or a reconcile); keeps the next run of unchanged schedules. */
  update(rules: readonly RuleConfig[]): void {
    const next = new Map<string, Entry>();
    for (const s of schedulesOf(rules)) {
      const key = `${s.trigger}:${s.rule.name}`;
      const old = this.next.get(key);
      if (old && old.cron === s.cron && old.timezone === s.timezone) {
        next.set(key, { ...old, rule: s.rule });
        continue;
      }
      const cron = new Cron(s.cron, { timezone: s.timezone, paused: true });
      const at = cron.nextRun(new Date(this.clock.now()))?.getTime();
      if (at !== undefined) next.set(key, { ...s, at, next: cron });
    }
    this.next = next;
    this.arm();
  }

  /** When each schedule fires next, soonest first. */
  upcoming(): Array<{ rule: string; trigger: ScheduledTrigger; at: Date }> {
    return [...this.next.values()].map((n) => ({ rule: n.rule.name, trigger: n.trigger, at: new Date(n.at) })).sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  /** Fires every schedule due at the clock's now, and re-arms. Called by the timer (and by tests). */
  tick(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const [key, n] of this.next) {
      if (n.at > now) continue;
      // Next run from now, not from the missed time: no burst after a pause.
      const after = n.next.nextRun(new Date(Math.max(now, n.at) + 1))?.getTime();
      if (after === undefined) this.next.delete(key);
      else this.next.set(key, { ...n, at: after });
      this.fire(n.rule, n.trigger);
    }
    this.arm();
  }

  private arm(): void {
    this.timer?.cancel();
    if (this.stopped || this.next.size === 0) return;
    const soonest = Math.min(...[...this.next.values()].map((n) => n.at));
    this.timer = this.clock.setTimer(() => this.tick(), Math.max(0, Math.min(MAX_SLEEP_MS, soonest - this.clock.now())));
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
