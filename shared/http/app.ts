import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import { EXECUTION_STATUSES, TASK_STATUSES } from '../executions/model.js';
import { EnqueueFailedError, type Frontdoor } from '../executions/frontdoor.js';
import { parseHarborWebhook } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import type { TaskStore } from '../ports.js';
import { ConfigChangeError, type ConfigView } from '../rules/config-view.js';
import type { RegistryClients } from '../rules/registry-endpoint.js';
import { describeIssue } from '../util/schema.js';
import { openApiDocument } from './openapi.js';

/** What the routes need. Secrets are resolved values; they are compared, never logged. */
export interface AppDeps {
  /** Where executions are started and stopped (the local service, or SQS on AWS). */
  service: Frontdoor;
  store: TaskStore;
  config: ConfigView;
  clients: RegistryClients;
  log: Log;
  counters: Counters;
  /** `/metrics` text, when metrics are exposed. */
  metrics?: () => Promise<string>;
  /** The whole `Authorization` header Harbor's webhook policy sends. */
  webhookAuth: string | undefined;
  /** The management API's bearer token; undefined when the gateway authorizes (IAM on AWS). */
  apiToken: string | undefined;
  /** Called after registries or rules change through the API. */
  onConfigChange?: () => void | Promise<void>;
}

/** Harbor's webhook bodies are small; anything larger is refused. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** Equal in constant time (hashes first, so lengths leak nothing either). */
export function secretEquals(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const error = (c: Context, status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 | 503, code: string, message: string) =>
  c.json({ error: { code, message } }, status);

const listQuery = z.object({
  limit: z.optional(z.string().check(z.regex(/^\d+$/, 'must be a number'))),
  cursor: z.optional(z.string()),
  rule: z.optional(z.string()),
  status: z.optional(z.string()),
});

function limitOf(v: string | undefined): number {
  const n = Number(v ?? 50);
  return Math.min(Math.max(1, n), 500);
}

/**
 * The HTTP routes of the service: Harbor's webhook, the management API under `/api/v1` (with
 * its OpenAPI document), `/healthz` and `/metrics`. A Hono app: the same object is served by
 * Node's HTTP server (`serve`) and by API Gateway through Hono's Lambda adapter.
 */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    // One line per request; never headers or bodies (they carry secrets).
    deps.log.info('request', { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) });
  });

  app.onError((err, c) => {
    if (err instanceof ConfigChangeError) return error(c, err.status, err.code, err.message);
    // The execution could not be queued: it is Failed already, and a retry starts a fresh one.
    if (err instanceof EnqueueFailedError) return c.json({ error: { code: err.code, message: err.message }, execution: err.execution }, 503);
    if (err instanceof ReplicatorError && (err.code === 'RULE_UNKNOWN' || err.code === 'REGISTRY_UNKNOWN')) return error(c, 404, err.code, err.message);
    if (err instanceof ReplicatorError && err.code === 'RULE_DISABLED') return error(c, 409, err.code, err.message);
    if (err instanceof ReplicatorError && err.code === 'INVALID_CURSOR') return error(c, 400, err.code, err.message);
    deps.log.error('request failed', { method: c.req.method, path: c.req.path, error: (err as Error).message });
    return error(c, 500, 'INTERNAL', 'internal error');
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/metrics', async (c) => {
    if (!deps.metrics) return error(c, 404, 'NOT_FOUND', 'metrics are not exposed');
    return c.text(await deps.metrics(), 200, { 'content-type': 'text/plain; version=0.0.4' });
  });

  // ---- Harbor's webhook ------------------------------------------------------------------------
  app.post(
    '/webhooks/harbor',
    async (c, next) => {
      // Early answers leave the body unread: the connection must not be reused after them.
      if (!deps.webhookAuth || !secretEquals(c.req.header('authorization'), deps.webhookAuth)) {
        c.header('connection', 'close');
        deps.counters.webhook('unauthorized');
        return error(c, 401, 'UNAUTHORIZED', 'the Authorization header does not match the webhook secret');
      }
      const type = (c.req.header('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
      if (type !== 'application/json') {
        c.header('connection', 'close');
        deps.counters.webhook('unsupported_media_type');
        return error(c, 415, 'UNSUPPORTED_MEDIA_TYPE', `expected application/json, got "${type || 'nothing'}"`);
      }
      await next();
    },
    bodyLimit({
      maxSize: WEBHOOK_BODY_LIMIT,
      onError: (c) => {
        // On Node, read the rest of the body away so the client gets the 413 instead of a reset.
        (c.env as { incoming?: { resume(): void } } | undefined)?.incoming?.resume();
        c.header('connection', 'close');
        deps.counters.webhook('too_large');
        return error(c, 413, 'PAYLOAD_TOO_LARGE', `body over ${WEBHOOK_BODY_LIMIT} bytes`);
      },
    }),
    async (c) => {
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch {
        deps.counters.webhook('invalid');
        return error(c, 400, 'INVALID_JSON', 'the body is not JSON');
      }
      const parsed = parseHarborWebhook(body);
      if (parsed.kind === 'invalid') {
        deps.counters.webhook('invalid');
        return error(c, 400, 'INVALID_PAYLOAD', parsed.reason);
      }
      if (parsed.kind === 'ignored') {
        deps.counters.webhook('ignored');
        deps.log.info('webhook ignored', { type: parsed.type });
        return c.json({ ignored: parsed.type, executions: [] }, 200);
      }
      const executions: string[] = [];
      let duplicate = false;
      for (const event of parsed.events) {
        const r = await deps.service.handleEvent(event);
        executions.push(...r.executions);
        duplicate ||= r.duplicate;
      }
      deps.counters.webhook(duplicate ? 'duplicate' : executions.length ? 'accepted' : 'no_match');
      if (executions.length === 0 && !duplicate) return c.json({ executions: [] }, 200);
      return c.json({ executions, ...(duplicate ? { duplicate: true } : {}) }, 202);
    },
  );

  // ---- management API ------------------------------------------------------------------------
  const api = new Hono();
  api.get('/openapi.json', (c) => c.json(openApiDocument));
  api.use(async (c, next) => {
    if (deps.apiToken === undefined) return next(); // API Gateway checked IAM already
    const auth = c.req.header('authorization');
    const token = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
    if (!secretEquals(token, deps.apiToken)) return error(c, 401, 'UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" is required');
    await next();
  });

  const body = async (c: Context): Promise<unknown> => {
    try {
      return await c.req.json();
    } catch {
      throw new ConfigChangeError(400, 'the body is not JSON');
    }
  };
  const changed = async () => deps.onConfigChange?.();
  const entries = (kind: 'registry' | 'rule') => {
    const list = kind === 'registry' ? deps.config.loaded.config.registries : deps.config.loaded.config.rules;
    return list.map((e) => ({ ...e, origin: deps.config.origin(kind, e.name) }));
  };

  for (const [kind, path] of [
    ['registry', 'registries'],
    ['rule', 'rules'],
  ] as const) {
    api.get(`/${path}`, (c) => c.json({ items: entries(kind) }));
    api.get(`/${path}/:name`, (c) => {
      const e = entries(kind).find((x) => x.name === c.req.param('name'));
      return e ? c.json(e) : error(c, 404, 'NOT_FOUND', `no ${kind} named "${c.req.param('name')}"`);
    });
    api.post(`/${path}`, async (c) => {
      const e = await deps.config.put(kind, await body(c), 'create');
      await changed();
      return c.json({ ...e, origin: 'api' }, 201);
    });
    api.put(`/${path}/:name`, async (c) => {
      const e = await deps.config.put(kind, await body(c), 'replace', c.req.param('name'));
      await changed();
      return c.json({ ...e, origin: 'api' });
    });
    api.delete(`/${path}/:name`, async (c) => {
      await deps.config.delete(kind, c.req.param('name'));
      await changed();
      return c.body(null, 204);
    });
  }

  // Harbor's "Test Connection": reach the registry and check the credentials.
  api.post('/registries/:name/ping', async (c) => {
    const reg = deps.config.loaded.registry(c.req.param('name'));
    try {
      const client = await deps.clients.get(reg);
      await client.ping();
      await client.checkCredentials();
      return c.json({ ok: true });
    } catch (err) {
      const code = err instanceof ReplicatorError ? err.code : 'ERROR';
      return c.json({ ok: false, error: { code, message: (err as Error).message } });
    }
  });

  api.post('/executions', async (c) => {
    const parsed = z.strictObject({ rule: z.string().check(z.minLength(1)) }).safeParse(await body(c));
    if (!parsed.success) return error(c, 400, 'INVALID_BODY', describeIssue(parsed.error));
    const e = await deps.service.runRule(parsed.data.rule, 'manual');
    return c.json(e, 201);
  });
  api.get('/executions', async (c) => {
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) return error(c, 400, 'INVALID_QUERY', describeIssue(q.error));
    const status = q.data.status;
    if (status && !(EXECUTION_STATUSES as readonly string[]).includes(status)) {
      return error(c, 400, 'INVALID_QUERY', `status: "${status}" is not one of ${EXECUTION_STATUSES.join(', ')}`);
    }
    const page = await deps.store.listExecutions({ rule: q.data.rule, status: status as (typeof EXECUTION_STATUSES)[number] | undefined, limit: limitOf(q.data.limit), cursor: q.data.cursor });
    return c.json({ items: page.items, next_cursor: page.cursor ?? null });
  });
  api.get('/executions/:id', async (c) => {
    const e = await deps.store.getExecution(c.req.param('id'));
    return e ? c.json(e) : error(c, 404, 'NOT_FOUND', `no execution ${c.req.param('id')}`);
  });
  api.post('/executions/:id/stop', async (c) => {
    const e = await deps.service.stopExecution(c.req.param('id'));
    return e ? c.json(e) : error(c, 404, 'NOT_FOUND', `no execution ${c.req.param('id')}`);
  });
  api.get('/executions/:id/tasks', async (c) => {
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) return error(c, 400, 'INVALID_QUERY', describeIssue(q.error));
    const status = q.data.status;
    if (status && !(TASK_STATUSES as readonly string[]).includes(status)) {
      return error(c, 400, 'INVALID_QUERY', `status: "${status}" is not one of ${TASK_STATUSES.join(', ')}`);
    }
    if (!(await deps.store.getExecution(c.req.param('id')))) return error(c, 404, 'NOT_FOUND', `no execution ${c.req.param('id')}`);
    const page = await deps.store.listTasks(c.req.param('id'), { status: status as (typeof TASK_STATUSES)[number] | undefined, limit: limitOf(q.data.limit), cursor: q.data.cursor });
    return c.json({ items: page.items, next_cursor: page.cursor ?? null });
  });

  app.route('/api/v1', api);
  app.notFound((c) => error(c, 404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`));
  return app;
}
