import { Hono } from 'hono';
import type { Counters, Log } from '../observability/telemetry.js';
import { apiRoutes, type ApiDeps } from './api-routes.js';
import { mountConsole, securityHeaders, type ConsoleAssets } from './console-routes.js';
import { error, withCommonHandling } from './respond.js';
import { mountWebhook, type WebhookDeps } from './webhook-routes.js';

/** Everything `serve` mounts. */
export type AppDeps = WebhookDeps &
  ApiDeps & {
    log: Log;
    counters: Counters;
    /** `/metrics` text, when metrics are exposed. */
    metrics?: () => Promise<string>;
    /** The replication console's built files, served at `/` (undefined: `/` says how to build them). */
    console?: ConsoleAssets | undefined;
  };

/**
 * The HTTP routes of `serve`: the console at `/`, Harbor's webhook, the management API under
 * `/api/v1` (with its OpenAPI document), `/healthz` and `/metrics`, every answer with the
 * console's security headers. Hono apps: the same objects are served by Node's
 * HTTP server (`serve`) and by API Gateway through Hono's Lambda adapter, where each function
 * gets only its own routes (createReceiverApp, createApiApp).
 */
export function createApp(deps: AppDeps): Hono {
  const app = withCommonHandling(new Hono(), deps.log);
  app.use(securityHeaders);
  mountConsole(app, deps.console);
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/metrics', async (c) => {
    if (!deps.metrics) return error(c, 404, 'NOT_FOUND', 'metrics are not exposed');
    return c.text(await deps.metrics(), 200, { 'content-type': 'text/plain; version=0.0.4' });
  });
  mountWebhook(app, deps);
  app.route('/api/v1', apiRoutes(deps));
  return app;
}

/** The webhook receiver's routes (AWS): `POST /webhooks/harbor` and `/healthz`, nothing else. */
export function createReceiverApp(deps: WebhookDeps): Hono {
  const app = withCommonHandling(new Hono(), deps.log);
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  mountWebhook(app, deps);
  return app;
}

/** The API function's routes (AWS): `/api/v1` only. */
export function createApiApp(deps: ApiDeps & { log: Log }): Hono {
  const app = withCommonHandling(new Hono(), deps.log);
  app.route('/api/v1', apiRoutes(deps));
  return app;
}
