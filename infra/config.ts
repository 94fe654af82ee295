// The config file as the AWS deployment reads it: which file (context, environment, defaults),
// the product's own validation (loadConfig), then what only matters on AWS, each problem named
// by its path like every other config error. The stack is built from the result and never sees
// a secret value: only Secrets Manager names and ARNs.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config, RegistryConfig, SecretRef } from '../shared/rules/config-schema.js';
import { ConfigError, loadConfig, type LoadedConfig } from '../shared/rules/load-config.js';
import { scheduleName } from '../shared/adapters/aws/eventbridge-schedules.js';
import { eventBridgeSchedules } from '../shared/adapters/aws/eventbridge-cron.js';

/** The CDK context key naming the config file (`npx cdk deploy -c config=replicator.yaml`). */
export const CONFIG_CONTEXT_KEY = 'config';
/** The environment variable naming the config file when no context is given. */
export const CONFIG_ENV = 'REPLICATOR_CONFIG_FILE';
/** Used when nothing names a file and there is no ./replicator.yaml: lets `cdk synth` show the stack. */
export const EXAMPLE_CONFIG = 'examples/replicator.yaml';

/** Which config file a synth reads, and whether it fell back to the example. */
export interface ConfigLocation {
  file: string;
  /** True when nothing named a file and the example is used (the app warns). */
  example: boolean;
}

/**
 * The config file: `-c config=PATH`, else $REPLICATOR_CONFIG_FILE, else ./replicator.yaml when it
 * exists, else the example in the repository (relative paths from `cwd`).
 */
export function locateConfig(contextValue: unknown, env: NodeJS.ProcessEnv, cwd: string, repoRoot: string): ConfigLocation {
  if (typeof contextValue === 'string' && contextValue !== '') return { file: resolve(cwd, contextValue), example: false };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv) return { file: resolve(cwd, fromEnv), example: false };
  const local = resolve(cwd, 'replicator.yaml');
  if (existsSync(local)) return { file: local, example: false };
  return { file: resolve(repoRoot, EXAMPLE_CONFIG), example: true };
}

/** A schedule of a config-file rule, as EventBridge Scheduler runs it: its scheduled trigger, or its drift reconcile. */
export interface ScheduledRule {
  rule: string;
  /** The rule's `reconcile:` schedule (its firing asks for a reconcile execution). */
  reconcile: boolean;
  /** `rule-<sanitized rule name>`, or `reconcile-<sanitized rule name>`; at most 64 characters. */
  scheduleName: string;
  /** `cron(...)` in EventBridge Scheduler's syntax. */
  expression: string;
  /** IANA time zone (the rule's, default UTC). */
  timezone: string;
}

/** What the functions may do in one ECR registry (one account and region). */
export interface EcrRegistryAccess {
  registry: string;
  partition: string;
  account: string;
  region: string;
  /** Some rule reads from it (pull, list). */
  source: boolean;
  /** Some rule writes to it (push). */
  destination: boolean;
  /** Some rule writing to it replicates deletions. */
  deletes: boolean;
  /** `create_repositories: true`: the copier creates missing repositories. */
  createRepositories: boolean;
}

/** A validated config, with what the stack needs of it worked out. */
export interface Deployment {
  file: string;
  config: Config;
  /** The validated config as JSON: baked into every bundle (`process.env.REPLICATOR_CONFIG`). */
  configJson: string;
  /** The Secrets Manager secret holding Harbor's webhook Auth Header, if any. */
  webhookSecret: string | undefined;
  /** Secrets Manager secrets of registry credentials (names or ARNs, unique). */
  registrySecrets: string[];
  /** `api.allowed_secrets`: other secrets API-managed registries may reference (read by the API, planner and copier). */
  apiAllowedSecrets: string[];
  /** Enabled scheduled rules, one schedule each; enabled rules with `reconcile:`, one more each. */
  schedules: ScheduledRule[];
  /** aws-ecr registries and what the rules do with them. */
  ecr: EcrRegistryAccess[];
  /** Things worth saying at synth that do not stop it. */
  warnings: string[];
}

/** Reads, validates and checks a config file for AWS. Throws ConfigError naming each bad path. */
export async function loadDeployment(file: string): Promise<Deployment> {
  return deploymentOf(await loadConfig(file));
}

const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
/** Registry types that are always public services on the internet (no private address). */
const INTERNET_ONLY: ReadonlySet<RegistryConfig['type']> = new Set(['docker-hub', 'github-ghcr', 'google-gcr', 'artifact-registry']);
const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$/;

function secretProblem(ref: SecretRef, path: string): string | undefined {
  if (!('secret' in ref)) {
    const kind = 'env' in ref ? `{env: ${ref.env}}` : `{file: ${ref.file}}`;
    return `${path}: must be {secret: NAME_OR_ARN} on AWS (got ${kind}: a Lambda has neither the deploying machine's environment nor its files, and the value must not go into the template)`;
  }
  const s = ref.secret;
  if (s.startsWith('arn:') ? !SECRET_ARN.test(s) : !SECRET_NAME.test(s)) {
    return `${path}: "${s}" is not a Secrets Manager secret name or ARN`;
  }
  return undefined;
}

/** The AWS partition of a region (ECR ARNs are per partition). */
function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/**
 * `rule-<name>`: EventBridge Scheduler allows [0-9a-zA-Z-_.] and 64 characters; longer names
 * keep a prefix and a hash of the whole name so two rules never share a schedule.
 */
export function scheduleNameOf(rule: string): string {
  return scheduleName('rule-', rule); // the API's schedules use the same naming with `api-`
}

/** `reconcile-<name>`: a rule's drift reconcile schedule, named as `scheduleNameOf` names (the API's: `api-reconcile-<name>`). */
export function reconcileScheduleNameOf(rule: string): string {
  return scheduleName('reconcile-', rule);
}

/** Checks a loaded config for what the AWS deployment needs, and derives the stack's inputs. */
export function deploymentOf(loaded: LoadedConfig): Deployment {
  const { config, file } = loaded;
  const issues: string[] = [];
  const warnings: string[] = [];
  const registrySecrets = new Set<string>();

  const ecr = new Map<string, EcrRegistryAccess>();
  config.registries.forEach((r: RegistryConfig, i) => {
    const path = `registries[${i}]`;
    if (r.credential && 'docker_config' in r.credential) {
      issues.push(`${path}.credential.docker_config: cannot work on AWS (a Lambda has no Docker config); use {username, password: {secret: NAME_OR_ARN}}`);
    } else if (r.credential) {
      const p = secretProblem(r.credential.password, `${path}.credential.password`);
      if (p) issues.push(p);
      else if ('secret' in r.credential.password) registrySecrets.add(r.credential.password.secret);
    }
    if (r.api_token) {
      const p = secretProblem(r.api_token, `${path}.api_token`);
      if (p) issues.push(p);
      else if ('secret' in r.api_token) registrySecrets.add(r.api_token.secret);
    }
    // A private CA reaches the Lambdas as a secret; a file on the deploying machine does not.
    if (r.ca_file) issues.push(`${path}.ca_file: a file on the deploying machine is not in the Lambda; put the PEM bundle in Secrets Manager and use ca: {secret: NAME_OR_ARN}`);
    else if (r.ca && 'file' in r.ca) issues.push(`${path}.ca.file: a file on the deploying machine is not in the Lambda; put the PEM bundle in Secrets Manager and use ca: {secret: NAME_OR_ARN}`);
    else if (r.ca) registrySecrets.add(r.ca.secret);
    if (r.type === 'aws-ecr') {
      const host = r.url ? new URL(r.url).host : '';
      const m = ECR_HOST.exec(host);
      if (!m || !r.url?.startsWith('https://')) {
        issues.push(`${path}.url: an aws-ecr registry's URL must be https://<account>.dkr.ecr.<region>.amazonaws.com (got ${JSON.stringify(r.url ?? '')})`);
      } else {
        const region = m[2]!;
        ecr.set(r.name, {
          registry: r.name,
          partition: partitionOf(region),
          account: m[1]!,
          region,
          source: false,
          destination: false,
          deletes: false,
          createRepositories: r.create_repositories,
        });
      }
    }
  });

  const webhookRef = config.webhook?.auth_header;
  let webhookSecret: string | undefined;
  if (webhookRef) {
    const p = secretProblem(webhookRef, 'webhook.auth_header');
    if (p) issues.push(p);
    else if ('secret' in webhookRef) webhookSecret = webhookRef.secret;
  }
  if (config.api?.token) {
    warnings.push('api.token is not used on AWS: the API is authorized by IAM (SigV4) at API Gateway');
  }
  if (config.api?.read_token) {
    warnings.push('api.read_token is not used on AWS: the API is authorized by IAM (SigV4) at API Gateway; grant read-only callers execute-api:Invoke on GET routes only');
  }
  if (config.api?.encryption_key) {
    warnings.push('api.encryption_key is not used on AWS: literal credentials given through the API are kept in Secrets Manager under api.secret_prefix');
  }

  for (const f of ['planner', 'copier'] as const) {
    if (config.aws[f].reserved_concurrency === 1) {
      warnings.push(`aws.${f}.reserved_concurrency: 1 is below the SQS event source's minimum concurrency (2): throttled receives will count towards the dead-letter queue`);
    }
  }

  // The proxy's password reaches the functions as a secret, like a registry's.
  const proxyPassword = config.aws.proxy?.credential?.password;
  if (proxyPassword) {
    const p = secretProblem(proxyPassword, 'aws.proxy.credential.password');
    if (p) issues.push(p);
    else if ('secret' in proxyPassword) registrySecrets.add(proxyPassword.secret);
  }

  const vpc = config.aws.vpc;
  if (vpc?.route_table_ids && !vpc.endpoints) {
    warnings.push('aws.vpc.route_table_ids is used only with endpoints: true (the gateway endpoints\' routes); without it the stack adds no route');
  }
  if (vpc?.endpoints) {
    // Endpoints are AWS in the deployed region only. Synth cannot see the subnets' routes (a NAT
    // may be there as well), so these are warnings.
    const regions = [...new Set([...ecr.values()].map((e) => e.region))].sort();
    if (regions.length > 1) {
      warnings.push(`aws.vpc.endpoints: VPC endpoints serve only the region deployed to, and the aws-ecr registries are in ${regions.join(', ')}: the others need a NAT gateway`);
    }
    config.registries.forEach((r, i) => {
      if (INTERNET_ONLY.has(r.type)) {
        warnings.push(`registries[${i}]: ${r.type} "${r.name}" is on the internet: with aws.vpc.endpoints the functions reach it only if the subnets also route to a NAT gateway`);
      }
    });
  }

  const translated = eventBridgeSchedules(config.rules);
  issues.push(...translated.problems);
  const schedules: ScheduledRule[] = translated.schedules.map((s) => ({ ...s, scheduleName: s.reconcile ? reconcileScheduleNameOf(s.rule) : scheduleNameOf(s.rule) }));
  config.rules.forEach((rule, i) => {
    const path = `rules[${i}]`;
    if (rule.trigger.type === 'event_based' && !webhookRef) {
      issues.push(`webhook.auth_header: rule "${rule.name}" (${path}) is event-based, so Harbor's webhook needs its secret: set webhook.auth_header to {secret: NAME_OR_ARN}`);
    }
    const src = ecr.get(loaded.source(rule).name);
    if (src) src.source = true;
    const dst = ecr.get(loaded.destination(rule).name);
    if (dst) {
      dst.destination = true;
      if (rule.replicate_deletion) dst.deletes = true;
    }
  });
  const names = new Map<string, string>();
  for (const s of schedules) {
    const other = names.get(s.scheduleName);
    if (other) issues.push(`rules: "${other}" and "${s.rule}" map to the same schedule name ${s.scheduleName}`);
    names.set(s.scheduleName, s.rule);
  }

  if (issues.length > 0) throw new ConfigError(file, issues);
  return {
    file,
    config,
    configJson: JSON.stringify(config),
    webhookSecret,
    registrySecrets: [...registrySecrets].sort(),
    apiAllowedSecrets: [...new Set(config.api?.allowed_secrets ?? [])].sort(),
    schedules,
    ecr: [...ecr.values()],
    warnings,
  };
}
