import { Hono, type Context } from 'hono';
import * as z from 'zod/mini';
import { DRIFT_ITEMS_MAX, EXECUTION_STATUSES, TASK_STATUSES, TRIGGERS } from '../executions/model.js';
import type { Frontdoor } from '../executions/frontdoor.js';
import type { TaskStore } from '../executions/ports.js';
import { checkConnection } from '../registry/connection-check.js';
import { ConfigChangeError, type ConfigView } from '../rules/config-view.js';
import { previewPlan } from '../rules/plan-preview.js';
import type { RegistryClients } from '../rules/registry-endpoint.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import { describeIssue } from '../util/schema.js';
import { openApiDocument } from './openapi.js';
import { ReplicatorError } from '../errors.js';
import { error, secretEquals } from './respond.js';

/** What the management API needs. The token is a resolved value: compared, never logged. */
export interface ApiDeps {
  /** Where executions are started and stopped (the local service, or SQS on AWS). */
  service: Frontdoor;
  store: TaskStore;
  config: ConfigView;
  clients: RegistryClients;
  /**
   * Who may call: a bearer token checked here (`serve`), with an optional second one that may
   * only read (GET), or callers the host has authorized before the request reaches the routes
   * (API Gateway with IAM on AWS).
   */
  auth: { bearer: string; readBearer?: string | undefined } | 'authorized-by-host';
  /** A rule's wiring (clients, lister), for `POST /rules/{name}/plan`; without it that route answers 501. */
  ruleRuntime?: ((rule: string) => Promise<RuleRuntime>) | undefined;
  /** How long `POST /rules/{name}/plan` may list the source (default 20 s). */
  planTimeoutMs?: number | undefined;
  /** Called after registries or rules change through the API. */
  onConfigChange?: () => void | Promise<void>;
  /** How long a registry ping may take (default 10 s). */
  pingTimeoutMs?: number | undefined;
}

export const DEFAULT_PING_TIMEOUT_MS = 10_000;

const listQuery = z.object({
  limit: z.optional(z.string().check(z.regex(/^\d+$/, 'must be a number'))),
  cursor: z.optional(z.string()),
  rule: z.optional(z.string()),
  status: z.optional(z.string()),
  trigger: z.optional(z.enum(TRIGGERS)),
});

function limitOf(v: string | undefined): number {
  const n = Number(v ?? 50);
  return Math.min(Math.max(1, n), 500);
}

/** The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110). */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer +(\S.*)$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}

/** What a caller may do: everything, or read only. */
export type Access = 'write' | 'read';

/** The routes' context: the caller's access, set by the auth middleware. */
type ApiEnv = { Variables: { access: Access } };

/**
 * Who the `Authorization` header says the caller is: `write` with the API token (or when the
 * host authorized the call), `read` with the read-only token, undefined otherwise. Both tokens
 * are compared in constant time, each time.
 */
export function accessOf(auth: ApiDeps['auth'], header: string | undefined): Access | undefined {
  if (auth === 'authorized-by-host') return 'write';
  const given = bearerToken(header);
  const write = secretEquals(given, auth.bearer);
  const read = auth.readBearer !== undefined && secretEquals(given, auth.readBearer);
  return write ? 'write' : read ? 'read' : undefined;
}

/** A listing's query (`limit`, `cursor`, `rule`, `status` among `statuses`), or the 400 that refuses it. */
function listing<S extends string>(
  c: Context,
  statuses: readonly S[],
): { rule: string | undefined; status: S | undefined; trigger: (typeof TRIGGERS)[number] | undefined; limit: number; cursor: string | undefined } | { refused: Response } {
  const q = listQuery.safeParse(c.req.query());
  if (!q.success) return { refused: error(c, 400, 'INVALID_QUERY', describeIssue(q.error)) };
  const status = q.data.status;
  if (status !== undefined && !(statuses as readonly string[]).includes(status)) {
    return { refused: error(c, 400, 'INVALID_QUERY', `status: "${status}" is not one of ${statuses.join(', ')}`) };
  }
  return { rule: q.data.rule, status: status as S | undefined, trigger: q.data.trigger, limit: limitOf(q.data.limit), cursor: q.data.cursor };
}

/** The management API, to be mounted under `/api/v1`. */
export function apiRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const api = new Hono<ApiEnv>();
  api.get('/openapi.json', (c) => c.json(openApiDocument));
  api.use(async (c, next) => {
    const access = accessOf(deps.auth, c.req.header('authorization'));
    if (!access) return error(c, 401, 'UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" is required');
    if (access === 'read' && c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      return error(c, 403, 'READ_ONLY', 'this token is api.read_token: it may read (GET) but not run, stop, test or change anything');
    }
    c.set('access', access);
    await next();
  });

  // What the caller may do, so a client (the console) shows only what will work. On AWS, IAM
  // decides per request: "write" here means only that this API adds no limit of its own.
  api.get('/access', (c) => c.json({ access: c.get('access') }));

  const body = async (c: Context): Promise<unknown> => {
    try {
      return await c.req.json();
    } catch {
      throw new ConfigChangeError(400, 'the body is not JSON');
    }
  };
  const changed = async () => deps.onConfigChange?.();

  for (const [kind, path] of [
    ['registry', 'registries'],
    ['rule', 'rules'],
  ] as const) {
    api.get(`/${path}`, (c) => c.json({ items: deps.config.entries(kind) }));
    api.get(`/${path}/:name`, (c) => {
      const e = deps.config.entries(kind).find((x) => x.name === c.req.param('name'));
      return e ? c.json(e) : error(c, 404, 'NOT_FOUND', `no ${kind} named "${c.req.param('name')}"`);
    });
    api.post(`/${path}`, async (c) => {
      const e = await deps.config.put(kind, await body(c), 'create');
      await changed();
      return c.json(e, 201);
    });
    api.put(`/${path}/:name`, async (c) => {
      const e = await deps.config.put(kind, await body(c), 'replace', c.req.param('name'));
      await changed();
      return c.json(e);
    });
    api.delete(`/${path}/:name`, async (c) => {
      await deps.config.delete(kind, c.req.param('name'));
      await changed();
      return c.body(null, 204);
    });
  }

  // Harbor's "Test Connection": reach the registry and check the credentials. The answer is the
  // registry's status and a code, never what it said.
  api.post('/registries/:name/ping', async (c) => {
    const reg = deps.config.loaded.registry(c.req.param('name'));
    return c.json(await checkConnection(() => deps.clients.get(reg), deps.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS));
  });

  // A dry run: what the rule would copy now, bounded (PlanPreview). Nothing is recorded or copied.
  api.post('/rules/:name/plan', async (c) => {
    const rule = deps.config.loaded.rule(c.req.param('name')).name; // RULE_UNKNOWN: 404
    if (!deps.ruleRuntime) return error(c, 501, 'NOT_AVAILABLE', 'this host does not make plans');
    try {
      return c.json(await previewPlan(await deps.ruleRuntime(rule), { timeoutMs: deps.planTimeoutMs }));
    } catch (err) {
      // The source could not be listed, or a credential not read: the code says which.
      if (err instanceof ReplicatorError) return error(c, 502, err.code, `the plan of rule "${rule}" could not be made: ${err.message}`);
      throw err;
    }
  });

  // A rule's last drift, as its last reconcile measured it (the list bounded, the counts whole).
  api.get('/rules/:name/drift', async (c) => {
    const rule = deps.config.loaded.rule(c.req.param('name')).name; // RULE_UNKNOWN: 404
    const drift = await deps.store.lastDrift(rule);
    if (!drift) return error(c, 404, 'NO_RECONCILE', `rule "${rule}" has no reconcile recorded yet (reconcile: {cron}, or POST /executions {"rule", "trigger": "reconcile"})`);
    return c.json({ ...drift, itemsLimit: DRIFT_ITEMS_MAX });
  });

  api.post('/executions', async (c) => {
    const parsed = z
      .strictObject({ rule: z.string().check(z.minLength(1)), trigger: z._default(z.enum(['manual', 'reconcile']), 'manual') })
      .safeParse(await body(c));
    if (!parsed.success) return error(c, 400, 'INVALID_BODY', describeIssue(parsed.error));
    const e = await deps.service.runRule(parsed.data.rule, parsed.data.trigger);
    return c.json(e, 201);
  });
  api.get('/executions', async (c) => {
    const q = listing(c, EXECUTION_STATUSES);
    if ('refused' in q) return q.refused;
    const page = await deps.store.listExecutions({ rule: q.rule, status: q.status, trigger: q.trigger, limit: q.limit, cursor: q.cursor });
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
    const q = listing(c, TASK_STATUSES);
    if ('refused' in q) return q.refused;
    if (!(await deps.store.getExecution(c.req.param('id')))) return error(c, 404, 'NOT_FOUND', `no execution ${c.req.param('id')}`);
    const page = await deps.store.listTasks(c.req.param('id'), { status: q.status, limit: q.limit, cursor: q.cursor });
    return c.json({ items: page.items, next_cursor: page.cursor ?? null });
  });
  return api;
}
