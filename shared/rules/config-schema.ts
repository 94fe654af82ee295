import * as z from 'zod/mini';
import '../util/schema.js';
import { hostPatternProblem } from '../registry/address-policy.js';
import { DEFAULT_LIMITS, type Limits } from '../registry/limits.js';
import { parseSize } from '../util/units.js';
import { checkCron } from './cron.js';

/**
 * The one configuration schema of the product (`replicator.yaml`, JSON accepted): registries and
 * rules with Harbor's own field names, so a replication policy exported from Harbor's API reads
 * as is, plus the service's webhook and API secrets.
 */

/** Where a secret comes from: an environment variable, a file, or AWS Secrets Manager. */
export const secretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')) }),
    z.strictObject({ file: z.string().check(z.minLength(1)) }),
    z.strictObject({ secret: z.string().check(z.minLength(1)) }),
  ],
  { error: 'must be a secret reference: {env: NAME}, {file: PATH} or {secret: NAME_OR_ARN} (literal secrets are not accepted)' },
);
export type SecretRef = z.infer<typeof secretRefSchema>;

/** A registry's blob transfers at once per process when its `max_concurrency` is not set. */
export const DEFAULT_MAX_CONCURRENCY = 8;

/**
 * Harbor's adapter names exactly (`src/pkg/reg/model/registry.go`), plus Artifact Registry. What
 * each one does differently from the distribution spec is in shared/registry-types/.
 */
export const REGISTRY_TYPES = [
  'harbor',
  'docker-registry',
  'docker-hub',
  'google-gcr',
  'artifact-registry',
  'aws-ecr',
  'github-ghcr',
  'azure-acr',
  'ali-acr',
  'huawei-SWR',
  'tencent-tcr',
  'jfrog-artifactory',
  'quay',
  'gitlab',
  'dtr',
  'volcengine-cr',
] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

const sizeSchema = z.pipe(
  z.union([z.int().check(z.positive()), z.string()]),
  z.transform((v, ctx) => {
    if (typeof v === 'number') return v;
    try {
      return parseSize(v, 'size');
    } catch {
      ctx.issues.push({ code: 'custom', message: `"${v}" is not a size (examples: 10MiB, 5MB, 1048576)`, input: v });
      return z.NEVER;
    }
  }),
);

const urlSchema = z.string().check(
  z.refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.host !== '';
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL'),
  // A user and password in the URL would be a literal secret, stored and shown with the registry.
  z.refine((v) => {
    try {
      const u = new URL(v);
      return u.username === '' && u.password === '';
    } catch {
      return true; // reported above
    }
  }, 'must not contain a user name or password (user:password@); give them as credential'),
);

export const registrySchema = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"')),
  type: z.enum(REGISTRY_TYPES),
  url: z.optional(urlSchema),
  description: z.optional(z.string()),
  insecure: z._default(z.boolean(), false),
  /** A PEM bundle added to the trusted roots for this registry (a private CA): a file, or a secret. */
  ca: z.optional(
    z.union([z.strictObject({ file: z.string().check(z.minLength(1)) }), z.strictObject({ secret: z.string().check(z.minLength(1)) })], {
      error: 'must be {file: PATH} or {secret: NAME_OR_ARN} holding a PEM bundle',
    }),
  ),
  /** The same as `ca: {file}` (earlier versions' key). */
  ca_file: z.optional(z.string().check(z.minLength(1))),
  /** A forward proxy for this registry only, over HTTPS_PROXY / HTTP_PROXY (config file only; no credentials in it). */
  proxy_url: z.optional(urlSchema),
  credential: z.optional(
    z.union(
      [
        z.strictObject({ username: z.string().check(z.minLength(1)), password: secretRefSchema }),
        z.strictObject({ docker_config: z.literal(true) }),
      ],
      { error: 'must be {username, password: <secret reference>} or {docker_config: true}' },
    ),
  ),
  chunk_size: z.optional(sizeSchema),
  /** Blob transfers at once (default DEFAULT_MAX_CONCURRENCY per process; set, it holds across every AWS copier). */
  max_concurrency: z.optional(z.int().check(z.positive(), z.lte(256))),
  requests_per_second: z.optional(z.number().check(z.positive())),
  /**
   * Create what a destination needs before a push, through the provider's API: an ECR repository,
   * a Quay or Docker Hub organization, a DTR namespace and repository, an Artifactory repository
   * key, a TCR / Volcengine CR / ACR namespace, an SWR organization (see shared/registry-types/).
   * Harbor projects are always created.
   */
  create_repositories: z._default(z.boolean(), false),
  /**
   * The provider API's base URL where it is not the type's default: Docker Hub's
   * (https://hub.docker.com), GitHub's (https://api.github.com), GitLab's (the token realm's
   * host), a cloud's OpenAPI endpoint (Tencent, Alibaba, Volcengine). Credentials go there.
   */
  api_url: z.optional(urlSchema),
  /** A token for the provider's API besides the registry credential: Quay's OAuth2 application token (organizations). */
  api_token: z.optional(secretRefSchema),
  /** The cloud region, where the URL does not say it (Alibaba, Huawei, Volcengine, Tencent custom domains). */
  region: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a region id such as cn-hangzhou'))),
  /** The registry instance where the URL does not say it: ACR EE instance id, TCR registry id, Volcengine CR registry name. */
  instance: z.optional(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be an instance id or registry name'))),
}).check(
  z.superRefine((r, ctx) => {
    if (r.ca !== undefined && r.ca_file !== undefined) {
      ctx.issues.push({ code: 'custom', message: 'give the CA once: ca: {file: PATH} (ca_file is its older name) or ca: {secret: NAME}', input: r.ca_file, path: ['ca_file'] });
    }
  }),
);
export type RegistryConfig = z.infer<typeof registrySchema>;

/** A registry's private CA, wherever the config named it (`ca`, or `ca_file` as `{file}`). */
export function caOf(reg: RegistryConfig): { file: string } | { secret: string } | undefined {
  return reg.ca ?? (reg.ca_file !== undefined ? { file: reg.ca_file } : undefined);
}

/**
 * A registry named, or Harbor's exported registry object (matched by its `name`), or Harbor's
 * "Local" (the Harbor a policy was exported from: null, absent, `{id: 0}` or `{name: "Local"}`),
 * which `local_registry` names.
 */
const registryRefSchema = z.optional(
  z.union(
    [
      z.string().check(z.minLength(1)),
      z.looseObject({ name: z.optional(z.string()), id: z.optional(z.unknown()) }).check(
        z.refine((o) => (o.name !== undefined && o.name !== '') || o.id === 0, 'a registry object needs its "name" (or id 0 for Harbor\'s "Local")'),
      ),
      z.null(),
    ],
    { error: 'must be a registry name, an object with its "name", or null for Harbor\'s "Local"' },
  ),
);
export type RegistryRef = z.infer<typeof registryRefSchema>;

/** Harbor's "Local" registry: null, absent, `{id: 0}` or `{name: "Local"}`. */
export function isLocalRef(ref: RegistryRef): boolean {
  if (ref === null || ref === undefined) return true;
  if (typeof ref === 'string') return false;
  return ref.id === 0 || ref.name === 'Local';
}

/** The configured registry a rule's side names; `local` for Harbor's "Local" (undefined when none is set). */
export function registryRefName(ref: RegistryRef, local: string | undefined): string | undefined {
  if (isLocalRef(ref)) return local;
  return typeof ref === 'string' ? ref : ref!.name;
}

export const FILTER_TYPES = ['name', 'tag', 'label', 'resource'] as const;
export const DECORATIONS = ['matches', 'excludes'] as const;

const filterSchema = z
  .strictObject({
    type: z.enum(FILTER_TYPES),
    value: z.optional(z.union([z.string(), z.array(z.string())])),
    decoration: z._default(z.enum(DECORATIONS), 'matches'),
  })
  .check(
    z.superRefine((f, ctx) => {
      if (f.type === 'label') return; // one label or a list of labels
      if (Array.isArray(f.value)) {
        ctx.issues.push({ code: 'custom', message: `a ${f.type} filter takes one pattern (a string), not a list`, input: f.value, path: ['value'] });
      }
      if (f.type === 'resource' && f.value !== undefined && f.value !== '' && f.value !== 'image' && f.value !== 'artifact') {
        ctx.issues.push({ code: 'custom', message: 'a resource filter is "image" or "artifact"', input: f.value, path: ['value'] });
      }
    }),
  );
export type FilterConfig = z.infer<typeof filterSchema>;

export const TRIGGER_TYPES = ['manual', 'scheduled', 'event_based'] as const;

const triggerSchema = z
  .strictObject({
    type: z.enum(TRIGGER_TYPES),
    trigger_settings: z.optional(
      z.strictObject({
        cron: z.optional(z.string()),
        timezone: z.optional(z.string()),
      }),
    ),
  })
  .check(
    z.superRefine((t, ctx) => {
      const cron = t.trigger_settings?.cron;
      if (t.type !== 'scheduled') return;
      if (!cron) {
        ctx.issues.push({ code: 'custom', message: 'a scheduled trigger needs trigger_settings.cron', input: t.trigger_settings, path: ['trigger_settings', 'cron'] });
        return;
      }
      const problem = checkCron(cron, t.trigger_settings?.timezone ?? 'UTC');
      if (problem) ctx.issues.push({ code: 'custom', message: problem.message, input: problem.field === 'timezone' ? t.trigger_settings?.timezone : cron, path: ['trigger_settings', problem.field] });
    }),
  );
export type TriggerConfig = z.infer<typeof triggerSchema>;

/**
 * When a rule's drift reconcile runs (a full run of the rule with trigger `reconcile`): a cron in
 * a time zone, checked as a scheduled trigger's is.
 */
const reconcileSchema = z
  .strictObject({
    cron: z.string(),
    timezone: z.optional(z.string()),
  })
  .check(
    z.superRefine((r, ctx) => {
      const problem = checkCron(r.cron, r.timezone ?? 'UTC');
      if (problem) ctx.issues.push({ code: 'custom', message: problem.message, input: problem.field === 'timezone' ? r.timezone : r.cron, path: [problem.field] });
    }),
  );
export type ReconcileConfig = z.infer<typeof reconcileSchema>;

/** `os/arch[/variant]`. */
const platformSchema = z.string().check(z.regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'must be os/arch[/variant], e.g. linux/amd64'));

export const ruleSchema = z
  .strictObject({
    name: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_" or "-"')),
    description: z.optional(z.string()),
    src_registry: registryRefSchema,
    dest_registry: registryRefSchema,
    dest_namespace: z._default(z.string(), ''),
    dest_namespace_replace_count: z._default(z.int().check(z.gte(-1)), -1),
    filters: z._default(z.array(filterSchema), []),
    trigger: z._default(triggerSchema, { type: 'manual' }),
    replicate_deletion: z._default(z.boolean(), false),
    override: z._default(z.boolean(), true),
    enabled: z._default(z.boolean(), true),
    speed: z._default(z.int(), -1),
    copy_by_chunk: z._default(z.boolean(), false),
    single_active_replication: z._default(z.boolean(), false),
    // Our extensions.
    include_untagged: z._default(z.boolean(), false),
    platforms: z.optional(z.array(platformSchema).check(z.minLength(1))),
    concurrency: z._default(z.int().check(z.positive(), z.lte(256)), 4),
    /**
     * Signatures, SBOMs, attestations and every other referrer follow their subject (OCI 1.1
     * referrers API, the `sha256-<hex>` tag schema, cosign's tags, Harbor's accessories); false:
     * the subject alone, and its referrer tags are not copied at all.
     */
    referrers: z._default(z.boolean(), true),
    /** Drift reconcile on a schedule (see README "Drift reconcile"). */
    reconcile: z.optional(reconcileSchema),
    // Fields Harbor's API exports with a policy (ReplicationPolicy); read and ignored.
    id: z.optional(z.unknown()),
    deletion: z.optional(z.unknown()),
    creation_time: z.optional(z.unknown()),
    update_time: z.optional(z.unknown()),
  })
  .check(
    z.superRefine((r, ctx) => {
      if (r.single_active_replication && r.trigger.type === 'event_based') {
        ctx.issues.push({
          code: 'custom',
          message: 'single_active_replication is not allowed with an event_based trigger (as in Harbor)',
          input: true,
          path: ['single_active_replication'],
        });
      }
      if (r.dest_namespace !== '' && !/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(r.dest_namespace)) {
        ctx.issues.push({ code: 'custom', message: 'must be a lowercase repository path (a, a/b)', input: r.dest_namespace, path: ['dest_namespace'] });
      }
    }),
  );
export type RuleConfig = z.infer<typeof ruleSchema>;

const functionSchema = (memory: number, timeout: number) =>
  z._default(
    z.strictObject({
      memory_mb: z._default(z.int().check(z.gte(128), z.lte(10240)), memory),
      timeout_s: z._default(z.int().check(z.gte(10), z.lte(900)), timeout),
      reserved_concurrency: z.optional(z.int().check(z.gte(1), z.lte(1000))),
    }),
    { memory_mb: memory, timeout_s: timeout },
  );

/** An EC2 resource ID: the prefix, a dash and 8 (older resources) to 17 hex digits. */
const ec2IdSchema = (prefix: string, what: string) =>
  z.string().check(z.regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), `must be ${what} ID (${prefix}- and 8 to 17 lowercase hex digits)`));

/** A list of IDs, each once (the same subnet or group twice is a typo, and Lambda refuses it). */
const idListSchema = (prefix: string, noun: string, max: number) =>
  z.array(ec2IdSchema(prefix, `a ${noun}`)).check(
    z.minLength(1, `lists at least one ${noun} ID`),
    z.maxLength(max, `lists at most ${max} ${noun}s (Lambda's limit)`),
    z.superRefine((ids, ctx) => {
      ids.forEach((id, i) => {
        if (ids.indexOf(id) !== i) ctx.issues.push({ code: 'custom', message: `"${id}" is listed twice`, input: id, path: [i] });
      });
    }),
  );

/**
 * `aws.vpc`: the functions run in an existing VPC (to reach a Harbor behind a VPN or Direct
 * Connect). Only IDs: the stack imports them as given, so `cdk synth` never looks the account up.
 */
const vpcSchema = z
  .strictObject({
    vpc_id: ec2IdSchema('vpc', 'a VPC'),
    /** Where every function's network interfaces go (and the interface endpoints' with `endpoints`). */
    subnet_ids: idListSchema('subnet', 'subnet', 16),
    /** The functions' security groups: their egress decides what the functions may reach. */
    security_group_ids: idListSchema('sg', 'security group', 5),
    /** The zone of each subnet, in the order of subnet_ids; lets the endpoints take one subnet per zone. */
    availability_zones: z.optional(
      z.array(z.string().check(z.regex(/^[a-z]{2}(?:-[a-z0-9]+)+[a-z]$/, 'must be an availability zone name (e.g. eu-west-1a)'))),
    ),
    /** Route tables of the subnets: the gateway endpoints (S3, DynamoDB) add their routes there. */
    route_table_ids: z.optional(z.array(ec2IdSchema('rtb', 'a route table')).check(z.minLength(1, 'lists at least one route table ID'))),
    /** Create the VPC endpoints the functions need to run without a NAT gateway. */
    endpoints: z._default(z.boolean(), false),
  })
  .check(
    z.superRefine((v, ctx) => {
      if (v.availability_zones && v.availability_zones.length !== v.subnet_ids.length) {
        ctx.issues.push({
          code: 'custom',
          message: `lists the zone of each subnet, in the order of subnet_ids: ${v.subnet_ids.length} expected, got ${v.availability_zones.length}`,
          input: v.availability_zones,
          path: ['availability_zones'],
        });
      }
      if (v.endpoints && !v.route_table_ids) {
        ctx.issues.push({
          code: 'custom',
          message: "is required with endpoints: true (the S3 and DynamoDB gateway endpoints are routes in the subnets' route tables)",
          input: undefined,
          path: ['route_table_ids'],
        });
      }
    }),
  );
export type VpcConfig = z.infer<typeof vpcSchema>;

/** The AWS deployment's settings (used by `cdk synth`/`deploy` only). */
/**
 * `aws.proxy`: the functions' forward proxy for registry and Harbor API traffic (AWS's own APIs
 * go directly, or through VPC endpoints). Its credential is a secret reference, never a literal.
 */
const awsProxySchema = z
  .strictObject({
    https_proxy: z.optional(urlSchema),
    http_proxy: z.optional(urlSchema),
    /** Hosts reached directly: names (with their subdomains), addresses, `:port`; comma-separated or a list. */
    no_proxy: z.optional(z.union([z.string(), z.array(z.string().check(z.minLength(1)))])),
    credential: z.optional(z.strictObject({ username: z.string().check(z.minLength(1)), password: secretRefSchema })),
  })
  .check(
    z.refine((p) => p.https_proxy !== undefined || p.http_proxy !== undefined, {
      message: 'needs https_proxy or http_proxy (or both)',
    }),
  );
export type AwsProxyConfig = z.infer<typeof awsProxySchema>;

const awsSchema = z.strictObject({
  copier: functionSchema(1024, 900),
  planner: functionSchema(512, 900),
  api: functionSchema(256, 29),
  /** Webhook route throttling on the HTTP API. */
  webhook_rate_limit: z._default(z.number().check(z.positive()), 50),
  webhook_burst_limit: z._default(z.int().check(z.positive()), 100),
  /** Executions and tasks are deleted this long after they end (DynamoDB TTL). */
  execution_retention_days: z._default(z.int().check(z.positive()), 90),
  /** Run the functions in an existing VPC (absent: Lambda's own network, with internet access). */
  vpc: z.optional(vpcSchema),
  /** Send registry and Harbor API traffic through a forward proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY as curl reads them). */
  proxy: z.optional(awsProxySchema),
});
export type AwsConfig = z.infer<typeof awsSchema>;

/** Bounds on what registries' answers can make us do (see shared/registry/limits.ts). */
const limitsSchema = z.strictObject({
  max_pages: z._default(z.int().check(z.gte(1), z.lte(1_000_000)), DEFAULT_LIMITS.maxPages),
  max_index_children: z._default(z.int().check(z.gte(1), z.lte(100_000)), DEFAULT_LIMITS.maxIndexChildren),
  max_manifest_bytes: z._default(sizeSchema, DEFAULT_LIMITS.maxManifestBytes),
  max_index_depth: z._default(z.int().check(z.gte(1), z.lte(16)), DEFAULT_LIMITS.maxIndexDepth),
});
export type LimitsConfig = z.infer<typeof limitsSchema>;

/** The engine's view of the `limits:` block. */
export function limitsOf(config: { limits: LimitsConfig }): Limits {
  const l = config.limits;
  return { maxPages: l.max_pages, maxIndexChildren: l.max_index_children, maxManifestBytes: l.max_manifest_bytes, maxIndexDepth: l.max_index_depth };
}

/** A Secrets Manager name or ARN. */
const secretNameSchema = z.string().check(
  z.regex(/^(?:[A-Za-z0-9/_+=.@-]{1,512}|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+)$/, 'must be a Secrets Manager secret name or ARN'),
);

/** The management API: who may call it, and what callers may make the service use. */
const apiSchema = z.strictObject({
  /** The bearer token `serve` requires (on AWS, IAM authorizes instead). */
  token: z.optional(secretRefSchema),
  /**
   * A second bearer token for `serve` that may only read: GET requests pass, anything else gets
   * 403 READ_ONLY (the console signed in with it shows no Run, Stop or other buttons that act).
   */
  read_token: z.optional(secretRefSchema),
  /** serve: 32 random bytes in base64 under which literal credentials given through the API are encrypted at rest. */
  encryption_key: z.optional(secretRefSchema),
  /**
   * Where literal credentials given through the API are written in Secrets Manager (AWS), and
   * the names `{secret: NAME}` references through the API may use. Default on AWS:
   * `harbor-replicator/<stack name>/api/`.
   */
  secret_prefix: z.optional(
    z.string().check(z.regex(/^[A-Za-z0-9/_+=.@-]{1,400}\/$/, 'must be a Secrets Manager name prefix ending in "/" (letters, digits and /_+=.@-)')),
  ),
  /** Other secrets `{secret: NAME}` references through the API may use (names or ARNs, exactly). */
  allowed_secrets: z._default(z.array(secretNameSchema), []),
  /** Hosts API-created registries (and their token realms) may be at: host globs or CIDRs. */
  allowed_registry_hosts: z.optional(
    z.array(
      z.string().check(
        z.superRefine((p, ctx) => {
          const problem = hostPatternProblem(p);
          if (problem) ctx.issues.push({ code: 'custom', message: problem, input: p });
        }),
      ),
    ).check(z.minLength(1, 'lists at least one host glob or CIDR (leave it out to allow any host)')),
  ),
});
export type ApiConfig = z.infer<typeof apiSchema>;

export const configSchema = z.strictObject({
  registries: z._default(z.array(registrySchema), []),
  rules: z._default(z.array(ruleSchema), []),
  webhook: z.optional(z.strictObject({ auth_header: z.optional(secretRefSchema) })),
  api: z.optional(apiSchema),
  /** The configured registry that a Harbor export's "Local" side means (the Harbor it came from). */
  local_registry: z.optional(z.string().check(z.minLength(1))),
  limits: z._default(limitsSchema, () => limitsSchema.parse({})),
  aws: z._default(awsSchema, () => awsSchema.parse({})),
});
export type Config = z.infer<typeof configSchema>;

/** Paths whose values are secrets: never echoed in an error. */
export function isSecretPath(path: ReadonlyArray<PropertyKey>): boolean {
  return path.some((p) => p === 'password' || p === 'auth_header' || p === 'token' || p === 'read_token' || p === 'encryption_key' || p === 'access_secret' || p === 'api_token');
}

/**
 * Harbor's `speed` is in Kbps (kilobits per second: its iothrottler counts 1024 / 8 bytes per
 * unit, and its UI says Kbps): N Kbps is N x 128 bytes per second, per task. 0 or less: unlimited.
 */
export function speedBytesPerSecond(speed: number): number | undefined {
  return speed > 0 ? (speed * 1024) / 8 : undefined;
}
