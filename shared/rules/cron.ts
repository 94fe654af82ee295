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
 * form, in a known IANA time zone, firing at least once in the next 5 years. Undefined when valid.
 */
export function checkCron(expr: string, timezone: string, now = Date.now()): CronProblem | undefined {
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
  let next: Date | null;
  try {
    next = new Cron(expr, { timezone, paused: true }).nextRun(new Date(now));
  } catch (err) {
    return { field: 'cron', message: `cron "${expr}": ${(err as Error).message.replace(/^CronPattern: /, '')}` };
  }
  // A date that does not exist (Feb 31) is accepted by the grammar and never fires: a rule
  // that silently never runs. Feb 29 fires within four years.
  if (!next || next.getTime() - now > NEVER_WITHIN_MS) {
    return { field: 'cron', message: `cron "${expr}" never fires in the next 5 years (a day that does not exist in that month?)` };
  }
  return undefined;
}

const NEVER_WITHIN_MS = 5 * 366 * 24 * 3600 * 1000;
