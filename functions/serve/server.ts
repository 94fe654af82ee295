import { proxyFromEnv } from '../../shared/registry/proxy.js';
import { serve as serveNode, type HttpBindings, type ServerType } from '@hono/node-server';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import { Logger } from '@aws-lambda-powertools/logger';
import { openEmbeddedStore } from '../../shared/adapters/local/embedded-store.js';
import { newMemoryQueue } from '../../shared/adapters/local/memory-queue.js';
import { loadEcrLocally, localSecretStore } from '../local/platform.js';
import { ReplicatorError } from '../../shared/errors.js';
import { Scheduler, type SchedulerClock } from '../../shared/executions/scheduler.js';
import { ReplicationService } from '../../shared/executions/service.js';
import { createApp } from '../../shared/http/app.js';
import type { ConsoleAssets } from '../../shared/http/console-routes.js';
import { loadConsoleAssets } from '../console/assets.js';
import { PrometheusCounters } from '../../shared/observability/prometheus.js';
import type { Log } from '../../shared/observability/telemetry.js';
import { ApiSecrets } from '../../shared/rules/api-secrets.js';
import { ConfigView } from '../../shared/rules/config-view.js';
import type { LoadedConfig } from '../../shared/rules/load-config.js';
import { limitsOf } from '../../shared/rules/config-schema.js';
import { apiRegistryUrlProblem, RegistryClients, type NetworkRules } from '../../shared/rules/registry-endpoint.js';
import { parseEncryptionKey } from '../../shared/rules/sealed-secret.js';
import { resolveSecret } from '../../shared/rules/secrets.js';

/** How to run the service. */
export interface ServerOptions {
  config: LoadedConfig;
  /** `host:port`; port 0 picks a free one. */
  listen: string;
  dataDir: string;
  log?: Log;
  /** Injected by tests: schedules fire without waiting for wall time. */
  schedulerClock?: SchedulerClock;
  retryDelayMs?: (attempt: number) => number;
  workers?: number;
  /** How long running tasks may finish at shutdown before they are handed back. */
  graceMs?: number;
  /** How long `POST /registries/{name}/ping` may take (default 10 s). */
  pingTimeoutMs?: number;
  /** HTTPS with this certificate chain and key (PEM files); plain HTTP without. */
  tls?: { certFile: string; keyFile: string } | undefined;
  /** The console's files (default: the package's dist/console/, when built). */
  console?: ConsoleAssets | undefined;
}

/** A running `serve`. */
export interface RunningServer {
  url: string;
  service: ReplicationService;
  scheduler: Scheduler;
  close(): Promise<void>;
}

/** Why `serve` will not start with this config (checked before anything opens). */
export function serviceConfigProblems(config: LoadedConfig): string[] {
  const problems: string[] = [];
  if (!config.config.api?.token) problems.push('api.token: the management API needs a token (a secret reference); serve will not run an open API');
  const eventRule = config.config.rules.find((r) => r.trigger.type === 'event_based');
  if (eventRule && !config.config.webhook?.auth_header) {
    problems.push(`webhook.auth_header: rule "${eventRule.name}" is event-based, so Harbor's webhook needs its secret (the policy's Auth Header); none is set`);
  }
  return problems;
}

/**
 * Starts the service: state in the data dir, the replication engine (recovering what a crash
 * left open), the scheduler, and the HTTP routes (webhook, API, health, metrics) on Node's
 * server. Refuses to start without an API token, or without a webhook secret when a rule is
 * event-based.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const problems = serviceConfigProblems(opts.config);
  if (problems.length > 0) throw new ReplicatorError('SERVE_CONFIG', `cannot serve with ${opts.config.file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  // The config file's secrets: {env}, {file}, and {secret} through Secrets Manager (loaded only if one is named).
  const secrets = { store: localSecretStore() };
  const apiToken = await resolveSecret(opts.config.config.api!.token!, 'api.token', secrets);
  const readToken = opts.config.config.api?.read_token ? await resolveSecret(opts.config.config.api.read_token, 'api.read_token', secrets) : undefined;
  if (readToken !== undefined && readToken === apiToken) {
    throw new ReplicatorError('SERVE_CONFIG', `cannot serve with ${opts.config.file}:\n  api.read_token: is the same as api.token; a read-only token must be another secret`);
  }
  const tls = opts.tls ? await readTls(opts.tls) : undefined;
  const consoleAssets = opts.console ?? (await loadConsoleAssets());
  const webhookAuth = opts.config.config.webhook?.auth_header ? await resolveSecret(opts.config.config.webhook.auth_header, 'webhook.auth_header', secrets) : undefined;
  const apiConfig = opts.config.config.api;
  let encryptionKey: Buffer | undefined;
  if (apiConfig?.encryption_key) {
    try {
      encryptionKey = parseEncryptionKey(await resolveSecret(apiConfig.encryption_key, 'api.encryption_key', secrets));
    } catch (err) {
      throw new ReplicatorError('SERVE_CONFIG', `cannot serve with ${opts.config.file}:\n  ${(err as Error).message}`, { cause: err });
    }
  }
  // API callers are not the operator: their registries' credentials are literals kept encrypted
  // or {secret} references (which serve cannot read), their URLs are checked.
  const apiSecrets = new ApiSecrets({ encryptionKey, prefix: apiConfig?.secret_prefix, allowed: apiConfig?.allowed_secrets });
  const proxy = proxyFromEnv();
  const network: NetworkRules = { refuseLoopback: false, allowedApiHosts: apiConfig?.allowed_registry_hosts, proxy };
  const [hostname, portText] = splitListen(opts.listen);

  const embedded = await openEmbeddedStore(opts.dataDir);
  let server: ServerType | undefined;
  try {
    const log = opts.log ?? new Logger({ serviceName: 'harbor-replicator' });
    const view = new ConfigView(opts.config, embedded.service, { apiSecrets, registryUrlProblem: (reg) => apiRegistryUrlProblem(reg, network), log });
    await view.refresh();
    const clients = new RegistryClients({ secrets, apiRegistries: view, network, limits: limitsOf(opts.config.config), ecr: loadEcrLocally, proxy });
    const counters = new PrometheusCounters(async () => (await embedded.store.activeExecutions()).length);
    const service = new ReplicationService({
      newQueue: newMemoryQueue,
      store: embedded.store,
      deliveries: embedded.service,
      config: view,
      clients,
      secrets,
      log,
      counters,
      ...(opts.workers ? { workers: opts.workers } : {}),
      ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
    });
    await service.start();
    const scheduler = new Scheduler((rule, trigger) => {
      service.runRule(rule.name, trigger).catch((err: unknown) => log.error(`${trigger} run failed to start`, { rule: rule.name, error: (err as Error).message }));
    }, opts.schedulerClock);
    scheduler.update(view.loaded.config.rules);
    const app = createApp({
      service,
      store: embedded.store,
      config: view,
      clients,
      log,
      counters,
      metrics: () => counters.metrics(),
      webhookAuth,
      // Node: read an oversized body away, so the client gets the 413 instead of a reset.
      onBodyTooLarge: (c) => (c.env as HttpBindings).incoming.resume(),
      auth: { bearer: apiToken, readBearer: readToken },
      ruleRuntime: (rule) => service.ruleRuntime(rule),
      console: consoleAssets,
      pingTimeoutMs: opts.pingTimeoutMs,
      onConfigChange: () => {
        service.invalidate();
        scheduler.update(view.loaded.config.rules);
      },
    });
    const listening = await new Promise<ServerType>((resolve, reject) => {
      const s = tls
        ? serveNode({ fetch: app.fetch, hostname, port: Number(portText), createServer: createHttpsServer, serverOptions: tls }, () => resolve(s))
        : serveNode({ fetch: app.fetch, hostname, port: Number(portText) }, () => resolve(s));
      s.once('error', reject);
    });
    server = listening;
    const address = listening.address();
    const port = typeof address === 'object' && address ? address.port : Number(portText);
    const url = `${tls ? 'https' : 'http'}://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
    log.info('serving', { url, dataDir: embedded.dir, rules: view.loaded.config.rules.length, schedules: scheduler.upcoming().map((u) => `${u.rule}${u.trigger === 'reconcile' ? ' (reconcile)' : ''} at ${u.at.toISOString()}`) });
    let closed: Promise<void> | undefined;
    return {
      url,
      service,
      scheduler,
      close: () =>
        (closed ??= (async () => {
          await new Promise<void>((r) => listening.close(() => r())); // stop accepting
          scheduler.stop();
          await service.close(opts.graceMs ?? 20_000);
          await embedded.close();
          log.info('stopped', {});
        })()),
    };
  } catch (err) {
    server?.close();
    await embedded.close();
    throw err;
  }
}

/** The certificate chain and key, read once at start (a file that cannot be read stops serve with its path). */
async function readTls(files: { certFile: string; keyFile: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (path: string, flag: string) =>
    readFile(path).catch((err: NodeJS.ErrnoException) => {
      throw new ReplicatorError('SERVE_CONFIG', `${flag} ${path}: cannot be read (${err.code ?? err.message})`, { cause: err });
    });
  const [cert, key] = await Promise.all([read(files.certFile, '--tls-cert'), read(files.keyFile, '--tls-key')]);
  try {
    createSecureContext({ cert, key }); // not PEM, or a key that is not the certificate's
  } catch (err) {
    throw new ReplicatorError('SERVE_CONFIG', `--tls-cert ${files.certFile} / --tls-key ${files.keyFile}: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key };
}

/** True for addresses only this machine reaches: the console may go without TLS there. */
export function isLoopbackListen(listen: string): boolean {
  const [host] = splitListen(listen);
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function splitListen(listen: string): [string, string] {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new ReplicatorError('USAGE', `--listen: "${listen}" is not host:port (e.g. 127.0.0.1:8080)`);
  return [m[1] ?? m[2]!, m[3]!];
}
