import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { core } from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import { configSchema, isLocalRef, isSecretPath, registryRefName, type Config, type RegistryConfig, type RuleConfig } from './config-schema.js';

/** A config that cannot be used; `issues` has one line per problem, each naming its path. */
export class ConfigError extends ReplicatorError {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super('CONFIG_INVALID', `invalid config ${file}:\n${issues.map((i) => `  ${i}`).join('\n')}`);
  }
}

/** A validated config with its rules' registries resolved. */
export interface LoadedConfig {
  file: string;
  config: Config;
  registry(name: string): RegistryConfig;
  rule(name: string): RuleConfig;
  /** The registry a rule reads from / writes to. */
  source(rule: RuleConfig): RegistryConfig;
  destination(rule: RuleConfig): RegistryConfig;
}

const MAX_ISSUES = 20;

/** `rules[2].filters[0].decoration` */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/** A value safe to show: a URL's user and password (a literal secret) replaced. */
function redactUserinfo(input: unknown): unknown {
  return typeof input === 'string' ? input.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@') : input;
}

function describe(issue: core.$ZodIssue): string {
  const path = formatPath(issue.path) || '(top level)';
  const input = redactUserinfo((issue as { input?: unknown }).input);
  const shown =
    input === undefined || isSecretPath(issue.path) || typeof input === 'object' || issue.message.includes(String(input))
      ? ''
      : ` (got ${JSON.stringify(input)})`;
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && input === undefined) message = 'is required';
  return `${path}: ${message}${shown}`;
}

/** Parses and validates config text (YAML or JSON); `file` names it in errors. */
export function parseConfig(text: string, file: string): LoadedConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.slice(0, MAX_ISSUES).map((e) => e.message.split('\n', 1)[0]!));
  }
  let data: unknown;
  try {
    // Aliases are expanded here: a few lines of YAML can name billions of nodes (an alias bomb).
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new ConfigError(file, [`(top level): ${(err as Error).message.split('\n', 1)[0]}`]);
  }
  const parsed = configSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(file, parsed.error.issues.slice(0, MAX_ISSUES).map(describe));
  }
  return resolveConfig(parsed.data, file);
}

/**
 * Cross-checks a schema-valid config (names unique, rules' registries defined) and indexes it.
 * Also used for the config file merged with API-managed registries and rules.
 */
export function resolveConfig(config: Config, file: string): LoadedConfig {
  const issues: string[] = [];
  const registries = new Map<string, RegistryConfig>();
  config.registries.forEach((r, i) => {
    if (registries.has(r.name)) issues.push(`registries[${i}].name: "${r.name}" is defined twice`);
    registries.set(r.name, r);
    if (!r.url && r.type !== 'docker-hub') issues.push(`registries[${i}].url: is required for type ${r.type}`);
  });
  const rules = new Map<string, RuleConfig>();
  const local = config.local_registry;
  if (local !== undefined && !registries.has(local)) {
    issues.push(`local_registry: no registry named "${local}" (registries: ${[...registries.keys()].map((n) => `"${n}"`).join(', ') || 'none defined'})`);
  }
  const refName = (ref: RuleConfig['src_registry']) => registryRefName(ref, local) ?? '';
  config.rules.forEach((rule, i) => {
    if (rules.has(rule.name)) issues.push(`rules[${i}].name: "${rule.name}" is defined twice`);
    rules.set(rule.name, rule);
    for (const side of ['src_registry', 'dest_registry'] as const) {
      const name = refName(rule[side]);
      if (isLocalRef(rule[side]) && local === undefined) {
        issues.push(`rules[${i}].${side}: Harbor's "Local" registry (the Harbor this policy was exported from); name it with local_registry: <registry name> at the top of the config`);
        continue;
      }
      if (!registries.has(name)) {
        const known = [...registries.keys()].map((n) => `"${n}"`).join(', ') || 'none defined';
        issues.push(`rules[${i}].${side}: no registry named "${name}" (registries: ${known})`);
      }
    }
  });
  if (issues.length > 0) throw new ConfigError(file, issues.slice(0, MAX_ISSUES));

  const registry = (name: string) => {
    const r = registries.get(name);
    if (!r) throw new ReplicatorError('REGISTRY_UNKNOWN', `no registry named "${name}" in ${file}`);
    return r;
  };
  return {
    file,
    config,
    registry,
    rule: (name) => {
      const r = rules.get(name);
      if (!r) {
        const known = [...rules.keys()].map((n) => `"${n}"`).join(', ') || 'none defined';
        throw new ReplicatorError('RULE_UNKNOWN', `no rule named "${name}" in ${file} (rules: ${known})`);
      }
      return r;
    },
    source: (rule) => registry(refName(rule.src_registry)),
    destination: (rule) => registry(refName(rule.dest_registry)),
  };
}

/** Reads and validates a config file. */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfig(text, file);
}
