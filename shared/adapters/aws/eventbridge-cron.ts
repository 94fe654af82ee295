import type { PlanJob } from '../../executions/messages.js';

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

type ScheduledRuleLike = { name: string; enabled: boolean; trigger: { type: string; trigger_settings?: { cron?: string | undefined; timezone?: string | undefined } | undefined } };

/**
 * The schedules of the scheduled rules in EventBridge Scheduler's terms (enabled rules only),
 * and the rules it cannot run, each as `<path>.trigger.trigger_settings.cron: <reason>`
 * (`pathOf` names a rule: `rules[i]` in the config file). Used at synth for the file's rules,
 * and before an API change is stored.
 */
export function eventBridgeSchedules(
  rules: readonly ScheduledRuleLike[],
  pathOf: (rule: ScheduledRuleLike, index: number) => string = (_, i) => `rules[${i}]`,
): { schedules: Array<{ rule: string; expression: string; timezone: string }>; problems: string[] } {
  const schedules: Array<{ rule: string; expression: string; timezone: string }> = [];
  const problems: string[] = [];
  rules.forEach((rule, i) => {
    if (rule.trigger.type !== 'scheduled') return;
    const cron = rule.trigger.trigger_settings?.cron ?? '';
    try {
      const expression = toEventBridgeCron(cron);
      if (rule.enabled) schedules.push({ rule: rule.name, expression, timezone: rule.trigger.trigger_settings?.timezone ?? 'UTC' });
    } catch (err) {
      if (!(err instanceof CronTranslationError)) throw err;
      problems.push(`${pathOf(rule, i)}.trigger.trigger_settings.cron: EventBridge Scheduler cannot run "${cron}": ${err.message}`);
    }
  });
  return { schedules, problems };
}

/**
 * What an EventBridge schedule sends to the execution queue when it fires (the target's Input,
 * verbatim): the planner turns it into a scheduled execution of the rule.
 */
export interface ScheduleMessage {
  scheduledRule: string;
}

/** A message on the execution queue on AWS: a plan job, or a schedule's firing. */
export type ExecutionMessage = PlanJob | ScheduleMessage;

/** The Input of a rule's schedule (the stack's `rule-*` and the API's `api-*` schedules alike). */
export function scheduleInput(rule: string): string {
  return JSON.stringify({ scheduledRule: rule } satisfies ScheduleMessage);
}
