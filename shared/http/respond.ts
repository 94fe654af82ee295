import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { ReplicatorError } from '../errors.js';
import { EnqueueFailedError } from '../executions/frontdoor.js';
import type { Log } from '../observability/telemetry.js';
import { ConfigChangeError } from '../rules/config-view.js';

/** What every route answer shares: the error body, request logging, error mapping. */

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 | 501 | 502 | 503;

/** `{"error": {code, message}}` with `status`. */
export const error = (c: Context, status: ErrorStatus, code: string, message: string) => c.json({ error: { code, message } }, status);

/** Equal in constant time (hashes first, so lengths leak nothing either). */
export function secretEquals(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** One log line per request (never headers or bodies: they carry secrets), errors mapped to statuses, 404 for the rest. */
export function withCommonHandling(app: Hono, log: Log): Hono {
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.info('request', { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) });
  });
  app.onError((err, c) => {
    if (err instanceof ConfigChangeError) return error(c, err.status, err.code, err.message);
    // The execution could not be queued: it is Failed already, and a retry starts a fresh one.
    if (err instanceof EnqueueFailedError) return c.json({ error: { code: err.code, message: err.message }, execution: err.execution }, 503);
    if (err instanceof ReplicatorError && (err.code === 'RULE_UNKNOWN' || err.code === 'REGISTRY_UNKNOWN')) return error(c, 404, err.code, err.message);
    if (err instanceof ReplicatorError && err.code === 'RULE_DISABLED') return error(c, 409, err.code, err.message);
    if (err instanceof ReplicatorError && err.code === 'INVALID_CURSOR') return error(c, 400, err.code, err.message);
    log.error('request failed', { method: c.req.method, path: c.req.path, error: (err as Error).message });
    return error(c, 500, 'INTERNAL', 'internal error');
  });
  app.notFound((c) => error(c, 404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`));
  return app;
}
