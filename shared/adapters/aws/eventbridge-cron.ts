import { createHash } from 'node:crypto';
import type { PlanJob } from '../../executions/messages.js';
import type { RuleConfig } from '../../rules/config-schema.js';

/** A cron expression EventBridge Scheduler cannot run, and why. */
export class CronTranslationError extends Error {
  override name = 'CronTranslationError';
}

const DOW_NAMES = /^(SUN|MON|TUE|WED|THU|FRI|SAT)$/i;

function dowValue(v: string): string {
  if (DOW_NAMES.test(v)) return v.toUpperCase();
  if (!/^\d+$/.test(v) || Number(v) > 7) throw new CronTranslationError(`day-of-week "${v}" is not 0-7 or SUN-SAT`);
  return String((Number(v) % 7) + 1); // cron: 0 or 7 = Sunday; EventBridge: 1 = Sunday
}

function translateDow(field: string): string {
  return field
    .split(',')
    .map((part) => {
      if (part.includes('/')) throw new CronTranslationError(`day-of-week steps ("${part}") are not supported by EventBridge`);
      const range = part.split('-');
      if (range.length === 2) {
        const [a, b] = range.map(dowValue) as [string, string];
        if (/^\d$/.test(a) && /^\d$/.test(b) && Number(a) > Number(b)) throw new CronTranslationError(`day-of-week range "${part}" wraps past Saturday`);
        return `${a}-${b}`;
      }
      if (range.length > 2) throw new CronTranslationError(`day-of-week "${part}" is not a range`);
      return dowValue(part);
    })
    .join(',');
}

/**
 * Translates a rule's cron (Harbor's 6 fields with seconds 0, or 5 fields) into EventBridge
 * Scheduler's `cron(minutes hours day-of-month month day-of-week year)`: one of the day fields
 * must be `?`, weekdays count 1-7 from Sunday, no seconds. Throws for what it cannot express
 * (both day fields restricted, day-of-week steps), so synth fails with the rule's path.
 */
export function toEventBridgeCron(expr: string): string {
  let fields = expr.trim().split(/\s+/);
  if (fields.length === 6) {
    if (fields[0] !== '0') throw new CronTranslationError('EventBridge runs at minute precision: the seconds field must be 0');
    fields = fields.slice(1);
  }
  if (fields.length !== 5) throw new CronTranslationError(`expected 5 or 6 fields, got ${fields.length}`);
  const [min, hour, dom, month, dow] = fields as [string, string, string, string, string];
  for (const [name, f] of [['minutes', min], ['hours', hour], ['day-of-month', dom], ['month', month]] as const) {
    if (!/^[0-9A-Za-z*,/\-?LW#]+$/.test(f)) throw new CronTranslationError(`${name} "${f}" has characters EventBridge does not accept`);
  }
  const domOpen = dom === '*' || dom === '?';
  const dowOpen = dow === '*' || dow === '?';
  if (!domOpen && !dowOpen) {
    throw new CronTranslationError('EventBridge cannot restrict both day-of-month and day-of-week (one of them must be "?")');
  }
  const ebDom = dowOpen ? (dom === '?' ? '*' : dom) : '?';
  const ebDow = dowOpen ? '?' : translateDow(dow);
  return `cron(${min} ${hour} ${ebDom} ${month} ${ebDow} *)`;
}

type ScheduledRuleLike = {
  name: string;
  enabled: boolean;
  trigger: { type: string; trigger_settings?: { cron?: string | undefined; timezone?: string | undefined } | undefined };
  reconcile?: { cron: string; timezone?: string | undefined } | undefined;
};

/** One schedule EventBridge Scheduler runs: a scheduled rule's firing, or its drift reconcile's. */
export interface EventBridgeSchedule {
  rule: string;
  /** True for the rule's `reconcile:` schedule (its message asks for a reconcile execution). */
  reconcile: boolean;
  expression: string;
  timezone: string;
}

/**
 * The schedules of the rules in EventBridge Scheduler's terms (enabled rules only): a scheduled
 * trigger's, and a `reconcile:` one's; and the crons it cannot run, each as
 * `<path>.trigger.trigger_settings.cron: <reason>` or `<path>.reconcile.cron: <reason>`
 * (`pathOf` names a rule: `rules[i]` in the config file). Used at synth for the file's rules,
 * and before an API change is stored.
 */
export function eventBridgeSchedules(
  rules: readonly ScheduledRuleLike[],
  pathOf: (rule: ScheduledRuleLike, index: number) => string = (_, i) => `rules[${i}]`,
): { schedules: EventBridgeSchedule[]; problems: string[] } {
  const schedules: EventBridgeSchedule[] = [];
  const problems: string[] = [];
  rules.forEach((rule, i) => {
    const wanted: Array<{ reconcile: boolean; cron: string; timezone: string | undefined; path: string }> = [];
    if (rule.trigger.type === 'scheduled') {
      wanted.push({ reconcile: false, cron: rule.trigger.trigger_settings?.cron ?? '', timezone: rule.trigger.trigger_settings?.timezone, path: 'trigger.trigger_settings.cron' });
    }
    if (rule.reconcile) wanted.push({ reconcile: true, cron: rule.reconcile.cron, timezone: rule.reconcile.timezone, path: 'reconcile.cron' });
    for (const w of wanted) {
      try {
        const expression = toEventBridgeCron(w.cron);
        if (rule.enabled) schedules.push({ rule: rule.name, reconcile: w.reconcile, expression, timezone: w.timezone ?? 'UTC' });
      } catch (err) {
        if (!(err instanceof CronTranslationError)) throw err;
        problems.push(`${pathOf(rule, i)}.${w.path}: EventBridge Scheduler cannot run "${w.cron}": ${err.message}`);
      }
    }
  });
  return { schedules, problems };
}

/**
 * What an EventBridge schedule sends to the execution queue when it fires (the target's Input,
 * verbatim): the planner turns it into an execution of the rule through the front door, with
 * trigger `reconcile` when `reconcile` is true (the rule's `reconcile:` schedule), else `scheduled`.
 */
export interface ScheduleMessage {
  scheduledRule: string;
  reconcile?: true;
}

/** A message on the execution queue on AWS: a plan job, or a schedule's firing. */
export type ExecutionMessage = PlanJob | ScheduleMessage;

/**
 * The Input of a rule's schedule (the stack's `rule-*` and `reconcile-*`, the API's `api-*`
 * and `api-reconcile-*` schedules alike).
 */
export function scheduleInput(rule: string, opts: { reconcile?: boolean } = {}): string {
  return JSON.stringify({ scheduledRule: rule, ...(opts.reconcile ? { reconcile: true } : {}) } satisfies ScheduleMessage);
}

/** What follows the prefix in the name of a rule's drift reconcile schedule (`api-reconcile-<rule>`). */
export const RECONCILE_PREFIX = 'reconcile-';

/** Scheduler's schedule names: 1-64 of [0-9A-Za-z_.-]. */
export const SCHEDULE_NAME = /^[0-9A-Za-z_.-]+$/;
const NOT_NAME_CHARS = /[^0-9A-Za-z_.-]/g;
const NAME_MAX = 64;

/**
 * The name of a rule's schedule: `prefix` + the rule's name. Rule names already use only
 * Scheduler's characters; one that does not fit in 64 (or had other characters) is cut and
 * suffixed with a hash of the full name, so two long names sharing a beginning stay apart.
 */
export function scheduleName(prefix: string, ruleName: string): string {
  const plain = `${prefix}${ruleName}`;
  const clean = plain.replace(NOT_NAME_CHARS, '-');
  if (clean === plain && clean.length <= NAME_MAX) return clean;
  const hash = createHash('sha256').update(ruleName).digest('hex').slice(0, 8);
  return `${clean.slice(0, NAME_MAX - hash.length - 1)}-${hash}`;
}

/** One schedule a store with `prefix` manages: a scheduled rule's, or a rule's reconcile (`<prefix>reconcile-<rule>`). */
export interface ManagedSchedule {
  name: string;
  rule: string;
  reconcile: boolean;
  cron: string;
  timezone: string | undefined;
  /** The rule (and which of its schedules), for messages. */
  what: string;
}

/** The schedules of enabled rules under `prefix`: a scheduled trigger's (`<prefix><rule>`) and a reconcile's (`<prefix>reconcile-<rule>`). */
export function managedSchedules(rules: readonly RuleConfig[], prefix: string): ManagedSchedule[] {
  const out: ManagedSchedule[] = [];
  for (const rule of rules) {
    if (!rule.enabled) continue;
    const settings = rule.trigger.trigger_settings;
    if (rule.trigger.type === 'scheduled' && settings?.cron) {
      out.push({ name: scheduleName(prefix, rule.name), rule: rule.name, reconcile: false, cron: settings.cron, timezone: settings.timezone, what: `rule "${rule.name}"` });
    }
    if (rule.reconcile) {
      // Within the prefix this store (and the API function's role) may manage.
      out.push({
        name: scheduleName(`${prefix}${RECONCILE_PREFIX}`, rule.name),
        rule: rule.name,
        reconcile: true,
        cron: rule.reconcile.cron,
        timezone: rule.reconcile.timezone,
        what: `rule "${rule.name}" (reconcile)`,
      });
    }
  }
  return out;
}

/**
 * Rules whose schedules would share a name in a store with `prefix` (rule `x`'s reconcile and a
 * scheduled rule named `reconcile-x`), one problem each: checked before an API change is stored.
 */
export function scheduleNameConflicts(rules: readonly RuleConfig[], prefix = 'api-'): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const w of managedSchedules(rules, prefix)) {
    const other = seen.get(w.name);
    if (other !== undefined) problems.push(`${other} and ${w.what} would share the EventBridge schedule ${w.name}; rename one`);
    else seen.set(w.name, w.what);
  }
  return problems;
}
