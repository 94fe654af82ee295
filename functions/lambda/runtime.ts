import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBLeases } from '../../shared/adapters/aws/dynamodb-lease.js';
import { DynamoDBSharedLimits } from '../../shared/adapters/aws/dynamodb-limits.js';
import { LeasedKeyedLock, type KeyedLock } from '../../shared/copy/keyed-lock.js';
import { DynamoDBTaskStore } from '../../shared/adapters/aws/dynamodb-store.js';
import { DynamoDBServiceStore } from '../../shared/adapters/aws/dynamodb-service-store.js';
import { SecretsManagerStore } from '../../shared/adapters/aws/secrets-manager-store.js';
import { loadEcr } from '../../shared/adapters/aws/ecr-registry.js';
import { SqsQueue } from '../../shared/adapters/aws/sqs-queue.js';
import { ExecutionFrontdoor } from '../../shared/executions/frontdoor.js';
import type { ExecutionMessage } from '../../shared/adapters/aws/eventbridge-cron.js';
import type { TaskMessage } from '../../shared/executions/messages.js';
import { ApiSecrets } from '../../shared/rules/api-secrets.js';
import { ConfigView } from '../../shared/rules/config-view.js';
import { eventBridgeSchedules, scheduleNameConflicts } from '../../shared/adapters/aws/eventbridge-cron.js';
import { parseConfig } from '../../shared/rules/load-config.js';
import { limitsOf } from '../../shared/rules/config-schema.js';
import { proxyOfAwsConfig, proxyRoutesOfAwsConfig } from '../../shared/rules/proxy-config.js';
import { apiRegistryUrlProblem, RegistryClients, type NetworkRules } from '../../shared/rules/registry-endpoint.js';
import { RuleRuntimes, type RuleRuntime } from '../../shared/rules/rule-runtime.js';
import type { SecretSources } from '../../shared/rules/secrets.js';
import { bakedConfigJson, ENV, requireEnv } from './environment.js';
import { CloudWatchCounters } from './metrics.js';

/** API-managed registries and rules are read again after this long (another function may change them). */
const CONFIG_TTL_MS = 10_000;

/**
 * What every function shares, built once per container (cold start) from the environment the
 * stack sets: the config baked into the bundle plus the API-managed entries in the table, the
 * DynamoDB stores, the two queues, Secrets Manager, registry clients, Powertools.
 */
export class LambdaRuntime {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
  readonly counters: CloudWatchCounters;
  readonly store: DynamoDBTaskStore;
  readonly serviceStore: DynamoDBServiceStore;
  readonly executionQueue: SqsQueue<ExecutionMessage>;
  readonly taskQueue: SqsQueue<TaskMessage>;
  readonly sqs: SQSClient;
  readonly secrets: SecretSources;
  readonly clients: RegistryClients;
  readonly config: ConfigView;
  readonly frontdoor: ExecutionFrontdoor;
  /** Copiers updating one destination `sha256-<hex>` referrers index take turns through a lease in the table. */
  readonly referrersLock: KeyedLock;
  private refreshed = 0;
  private readonly runtimes: RuleRuntimes;

  constructor() {
    const text = bakedConfigJson();
    if (!text) throw new Error('REPLICATOR_CONFIG is not set: the stack bakes the config into each bundle');
    const file = parseConfig(text, 'replicator config (deployed)');
    this.log = new Logger({ serviceName: 'harbor-replicator' });
    this.metrics = new Metrics({ namespace: 'HarborReplicator', serviceName: 'harbor-replicator' });
    this.tracer = new Tracer({ serviceName: 'harbor-replicator' });
    this.counters = new CloudWatchCounters(this.metrics);
    const dynamo = this.tracer.captureAWSv3Client(new DynamoDBClient({ maxAttempts: 5 }));
    // Requests go to the configured endpoint (the region's), whatever host a queue URL names.
    this.sqs = this.tracer.captureAWSv3Client(new SQSClient({ maxAttempts: 5, useQueueUrlAsEndpoint: false }));
    const table = requireEnv(ENV.table);
    const retentionSeconds = file.config.aws.execution_retention_days * 86_400;
    this.store = new DynamoDBTaskStore(dynamo, table, {
      retentionSeconds,
      onFinished: (e) => {
        this.counters.executionFinished(e.status, e);
        this.log.info('execution finished', { execution: e.id, rule: e.rule, status: e.status, counts: e.counts });
      },
      onDrift: (report) => this.counters.driftMeasured(report.rule, report.counts),
    });
    this.serviceStore = new DynamoDBServiceStore(dynamo, table);
    const sharedLimits = new DynamoDBSharedLimits(dynamo, table);
    this.referrersLock = new LeasedKeyedLock(new DynamoDBLeases(dynamo, table));
    this.executionQueue = new SqsQueue<ExecutionMessage>({ client: this.sqs, queueUrl: requireEnv(ENV.executionQueueUrl) });
    this.taskQueue = new SqsQueue<TaskMessage>({ client: this.sqs, queueUrl: requireEnv(ENV.taskQueueUrl) });
    const secretsClient = this.tracer.captureAWSv3Client(new SecretsManagerClient({ maxAttempts: 5 }));
    const secretsManager = new SecretsManagerStore({ client: secretsClient });
    this.secrets = { store: secretsManager };
    // API callers are not the operator: literal credentials go to Secrets Manager under the
    // prefix, {secret} references must be under it (or allowed), URLs are checked, and on AWS
    // no registry client reaches loopback (the Lambda runtime API) or link-local addresses.
    const api = file.config.api;
    const apiSecrets = new ApiSecrets({ writer: secretsManager, reader: secretsManager, prefix: process.env[ENV.apiSecretPrefix] || undefined, allowed: api?.allowed_secrets });
    const network: NetworkRules = { refuseLoopback: true, allowedApiHosts: api?.allowed_registry_hosts, proxy: proxyRoutesOfAwsConfig(file.config.aws.proxy) };
    this.config = new ConfigView(file, this.serviceStore, {
      platformProblems: (c) => [
        ...eventBridgeSchedules(c.config.rules, (r) => `rule "${r.name}"`).problems,
        // The API's schedules (`api-<rule>`, `api-reconcile-<rule>`) of the rules not in the file.
        ...scheduleNameConflicts(c.config.rules.filter((r) => this.config.origin('rule', r.name) !== 'file')),
      ],
      apiSecrets,
      registryUrlProblem: (reg) => apiRegistryUrlProblem(reg, network),
      log: this.log,
    });
    this.clients = new RegistryClients({ secrets: this.secrets, apiRegistries: this.config, network, limits: limitsOf(file.config),
      ecr: loadEcr,
      proxy: () => proxyOfAwsConfig(file.config.aws.proxy, this.secrets),
      // Copiers share throttled hosts and explicit per-registry limits through the table.
      shared: { throttle: sharedLimits, budget: sharedLimits },
    });
    this.runtimes = new RuleRuntimes(() => this.config.loaded, this.clients, { secrets: this.secrets });
    this.frontdoor = new ExecutionFrontdoor({
      store: this.store,
      deliveries: this.serviceStore,
      config: () => this.config.loaded,
      planQueue: this.executionQueue,
      log: this.log,
      counters: this.counters,
    });
  }

  /** Reads the API-managed registries and rules when the copy in memory is older than a few seconds. */
  async freshConfig(): Promise<ConfigView> {
    if (Date.now() - this.refreshed > CONFIG_TTL_MS) {
      await this.config.refresh();
      this.refreshed = Date.now();
      this.runtimes.clear();
    }
    return this.config;
  }

  /** Forgets cached wiring after a config change made here. */
  invalidate(): void {
    this.refreshed = Date.now();
    this.runtimes.clear();
  }

  /** The wiring of a rule (clients, lister), cached per container. */
  ruleRuntime(rule: string): Promise<RuleRuntime> {
    return this.runtimes.get(rule);
  }
}

let current: LambdaRuntime | undefined;

/** The container's runtime (built on first use). */
export function lambdaRuntime(): LambdaRuntime {
  current ??= new LambdaRuntime();
  return current;
}

/** Tests: the next invocation builds a new runtime (a new "container"). */
export function resetLambdaRuntime(): void {
  current = undefined;
}
