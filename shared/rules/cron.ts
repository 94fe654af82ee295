import { Cron } from 'croner';

/** A problem with a schedule: which setting, and why. */
export interface CronProblem {
  field: 'cron' | 'timezone';
  message: string;
}

/** True when `tz` is an IANA time zone this runtime knows. */
export function isKnownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a schedule the way rules accept it: Harbor's 6-field form (seconds first, and the
 * seconds must be 0: no platform we schedule on fires below the minute) or the ordinary 5-field
 * form, in a known IANA time zone. Undefined when valid.
 */
export function checkCron(expr: string, timezone: string): CronProblem | undefined {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return { field: 'cron', message: `cron "${expr}" has ${fields.length} fields; expected 5 (min hour day month weekday) or Harbor's 6 (seconds first)` };
  }
  if (fields.length === 6 && fields[0] !== '0') {
    return { field: 'cron', message: `cron "${expr}": the seconds field must be 0` };
  }
  if (fields[fields.length - 5] === '*') {
    return { field: 'cron', message: `cron "${expr}": "*" is not allowed in the minutes field (as in Harbor: a rule runs at most once an hour per listed minute)` };
  }
  if (!isKnownTimeZone(timezone)) {
    return { field: 'timezone', message: `unknown time zone "${timezone}" (use an IANA name such as Europe/Paris or UTC)` };
  }
  try {
    new Cron(expr, { timezone, paused: true });
  } catch (err) {
    return { field: 'cron', message: `cron "${expr}": ${(err as Error).message.replace(/^CronPattern: /, '')}` };
  }
  return undefined;
}
