import type { Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { createApiApp, createReceiverApp } from '../../shared/http/app.js';
import { resolveSecret } from '../../shared/rules/secrets.js';
import { lambdaRuntime, type LambdaRuntime } from './runtime.js';

/** What differs between the receiver and the API function. */
export interface HttpFunctionOptions {
  /** The receiver serves Harbor's webhook only; the API function `/api/v1` only. */
  routes: 'webhook' | 'api';
  /** Called after registries or rules change through the API (the API function syncs schedules). */
  onConfigChange?: (rt: LambdaRuntime) => Promise<void>;
}

/**
 * An API Gateway (HTTP API, payload 2.0) handler: the gateway sends the webhook route to the
 * receiver and `/api/v1` (IAM-authorized, so the app asks for no token) to the API function,
 * and each function mounts only its own routes (anything else is 404 there). The app is built
 * on the first request: the receiver reads the webhook secret from Secrets Manager then.
 */
export function httpHandler(opts: HttpFunctionOptions) {
  let app: Promise<ReturnType<typeof handle>> | undefined;
  const build = async (rt: LambdaRuntime) => {
    let hono: Hono;
    if (opts.routes === 'webhook') {
      const ref = rt.config.loaded.config.webhook?.auth_header;
      const webhookAuth = ref ? await resolveSecret(ref, 'webhook.auth_header', rt.secrets) : undefined;
      hono = createReceiverApp({ service: rt.frontdoor, log: rt.log, counters: rt.counters, webhookAuth });
    } else {
      hono = createApiApp({
        service: rt.frontdoor,
        store: rt.store,
        config: rt.config,
        clients: rt.clients,
        log: rt.log,
        auth: 'authorized-by-host', // the gateway authorizes /api/v1 with IAM
        ruleRuntime: (rule) => rt.ruleRuntime(rule),
        onConfigChange: async () => {
          rt.invalidate();
          await opts.onConfigChange?.(rt);
        },
      });
    }
    return handle(hono);
  };
  return async (event: LambdaEvent, context: Context) => {
    const rt = lambdaRuntime();
    rt.log.addContext(context);
    app ??= build(rt).catch((err: unknown) => {
      app = undefined;
      throw err;
    });
    await rt.freshConfig();
    try {
      return await (await app)(event, context);
    } finally {
      if (rt.metrics.hasStoredMetrics()) rt.metrics.publishStoredMetrics();
    }
  };
}
