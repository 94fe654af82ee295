import { config, type core } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

// zod is set up once for the whole engine: zod/mini (the same validation as zod at a fraction
// of the start-up cost, which matters to a CLI) with English messages (mini ships none by
// default). Modules import `* as z from 'zod/mini'` and this module for `describeIssue`; the
// namespace is not re-exported from here, so bundles keep only the schemas they use.
config(en());

/** `path.to[2].field: message` for the first issue of a failed parse. */
export function describeIssue(error: core.$ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (!issue) return `${prefix || 'value'}: invalid`;
  const path = issue.path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    prefix,
  );
  return `${path || 'value'}: ${issue.message}`;
}
