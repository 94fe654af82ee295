import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Frontdoor } from '../executions/frontdoor.js';
import { parseHarborWebhook } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import { error, secretEquals } from './respond.js';

/** What Harbor's webhook route needs. The secret is a resolved value: compared, never logged. */
export interface WebhookDeps {
  /** Where executions are started (the local service, or SQS on AWS). */
  service: Pick<Frontdoor, 'handleEvent'>;
  log: Log;
  counters: Counters;
  /** The whole `Authorization` header Harbor's webhook policy sends. */
  webhookAuth: string | undefined;
  /** The host's part in refusing an oversized body (Node: read the rest away, so the client gets the 413, not a reset). */
  onBodyTooLarge?: ((c: Context) => void) | undefined;
}

/** Harbor's webhook bodies are small; anything larger is refused. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** `POST /webhooks/harbor`: the secret, then the media type, the size and Harbor's payload. */
export function mountWebhook(app: Hono, deps: WebhookDeps): void {
  const tooLarge = (c: Context) => {
    deps.onBodyTooLarge?.(c);
    c.header('connection', 'close');
    deps.counters.webhook('too_large');
    return error(c, 413, 'PAYLOAD_TOO_LARGE', `body over ${WEBHOOK_BODY_LIMIT} bytes`);
  };
  const limit = bodyLimit({ maxSize: WEBHOOK_BODY_LIMIT, onError: tooLarge });
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
    async (c, next) => {
      // A body with a Content-Length (Harbor always sends one) is sized from it, as hono's
      // bodyLimit would, but without asking for `c.req.raw.body` first: on Node that builds a
      // whole WHATWG Request around a web stream for every delivery (about a third of the front
      // door's CPU in a burst), where reading the text takes @hono/node-server's direct path.
      // A chunked body goes through bodyLimit, which counts its bytes as they come.
      const length = c.req.header('content-length');
      if (length !== undefined && c.req.header('transfer-encoding') === undefined && /^\d{1,15}$/.test(length.trim())) {
        return Number(length) > WEBHOOK_BODY_LIMIT ? tooLarge(c) : next();
      }
      return limit(c, next);
    },
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
}
