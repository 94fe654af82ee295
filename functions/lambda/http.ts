import type { Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { createApp } from '../../shared/http/app.js';
import { resolveSecret } from '../../shared/rules/secrets.js';
import { lambdaRuntime, type LambdaRuntime } from './runtime.js';

/** What differs between the receiver and the API function. */
export interface HttpFunctionOptions {
  /** Called after registries or rules change through the API (the API function syncs schedules). */
  onConfigChange?: (rt: LambdaRuntime) => Promise<void>;
}

/**
 * An API Gateway (HTTP API, payload 2.0) handler serving the same routes as `serve`: the gateway
 * sends the webhook route to the receiver and `/api/v1` (IAM-authorized, so the app asks for no
 * token) to the API function. The app is built on the first request: the webhook secret comes
 * from Secrets Manager then.
 */
export function httpHandler(opts: HttpFunctionOptions = {}) {
  let app: Promise<ReturnType<typeof handle>> | undefined;
  const build = async (rt: LambdaRuntime) => {
    const ref = rt.config.loaded.config.webhook?.auth_header;
    const webhookAuth = ref ? await resolveSecret(ref, 'webhook.auth_header', rt.secrets) : undefined;
    const hono: Hono = createApp({
      service: rt.frontdoor,
      store: rt.store,
      config: rt.config,
      clients: rt.clients,
      log: rt.log,
      counters: rt.counters,
      webhookAuth,
      apiToken: undefined, // the gateway authorizes /api/v1 with IAM
      onConfigChange: async () => {
        rt.invalidate();
        await opts.onConfigChange?.(rt);
      },
    });
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
