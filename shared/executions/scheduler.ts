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

/**
 * Fires scheduled rules: Harbor's 6-field cron (seconds first) or the 5-field form, in the
 * rule's IANA time zone (croner computes the next run). Each rule's next run is computed from
 * the time it is armed, so runs missed while the process was down are not replayed in a burst.
 */
export class Scheduler {
  private next = new Map<string, { rule: RuleConfig; at: number; cron: Cron }>();
  private timer: { cancel(): void } | undefined;
  private stopped = false;

  constructor(
    private readonly fire: (rule: RuleConfig) => void,
    private readonly clock: SchedulerClock = systemClock,
  ) {}

  /** Sets the scheduled rules (enabled, trigger scheduled); keeps the next run of unchanged ones. */
  update(rules: readonly RuleConfig[]): void {
    const wanted = rules.filter((r) => r.enabled && r.trigger.type === 'scheduled' && r.trigger.trigger_settings?.cron);
    const next = new Map<string, { rule: RuleConfig; at: number; cron: Cron }>();
    for (const rule of wanted) {
      const settings = rule.trigger.trigger_settings!;
      const old = this.next.get(rule.name);
      const same = old && old.rule.trigger.trigger_settings?.cron === settings.cron && old.rule.trigger.trigger_settings?.timezone === settings.timezone;
      if (same) {
        next.set(rule.name, { ...old, rule });
        continue;
      }
      const cron = new Cron(settings.cron!, { timezone: settings.timezone ?? 'UTC', paused: true });
      const at = cron.nextRun(new Date(this.clock.now()))?.getTime();
      if (at !== undefined) next.set(rule.name, { rule, at, cron });
    }
    this.next = next;
    this.arm();
  }

  /** When each scheduled rule fires next. */
  upcoming(): Array<{ rule: string; at: Date }> {
    return [...this.next.values()].map((n) => ({ rule: n.rule.name, at: new Date(n.at) })).sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  /** Fires every rule due at the clock's now, and re-arms. Called by the timer (and by tests). */
  tick(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const [name, n] of this.next) {
      if (n.at > now) continue;
      // Next run from now, not from the missed time: no burst after a pause.
      const after = n.cron.nextRun(new Date(Math.max(now, n.at) + 1))?.getTime();
      if (after === undefined) this.next.delete(name);
      else this.next.set(name, { ...n, at: after });
      this.fire(n.rule);
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
