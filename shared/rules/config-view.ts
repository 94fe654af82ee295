import { ReplicatorError } from '../errors.js';
import type { ConfigStore } from '../ports.js';
import { describeIssue } from '../util/schema.js';
import { registrySchema, ruleSchema, type Config, type RegistryConfig, type RuleConfig } from './config-schema.js';
import { ConfigError, resolveConfig, type LoadedConfig } from './load-config.js';

/** A request to change API-managed config that cannot be done: a status and why. */
export class ConfigChangeError extends ReplicatorError {
  override name = 'ConfigChangeError';
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
  ) {
    super('CONFIG_CHANGE', message);
  }
}

type Kind = 'registry' | 'rule';

/**
 * The config a service runs with: the file's registries and rules (read-only) and those
 * managed through the API (kept in the store), validated together by the same schema and
 * cross-checks, so an API change that would break a rule is refused with the reason.
 */
export class ConfigView {
  private current: LoadedConfig;
  private api: { registries: RegistryConfig[]; rules: RuleConfig[] } = { registries: [], rules: [] };

  constructor(
    private readonly file: LoadedConfig,
    private readonly store: ConfigStore | undefined,
    /** What the platform cannot run, checked before a change is stored (e.g. crons EventBridge cannot express). */
    private readonly platformProblems: (config: LoadedConfig) => string[] = () => [],
  ) {
    this.current = file;
  }

  /** The merged config now. */
  get loaded(): LoadedConfig {
    return this.current;
  }

  /** Where an entry comes from. */
  origin(kind: Kind, name: string): 'file' | 'api' | undefined {
    const inFile = kind === 'registry' ? this.file.config.registries.some((r) => r.name === name) : this.file.config.rules.some((r) => r.name === name);
    if (inFile) return 'file';
    const inApi = kind === 'registry' ? this.api.registries.some((r) => r.name === name) : this.api.rules.some((r) => r.name === name);
    return inApi ? 'api' : undefined;
  }

  /** Reads the API-managed entries and rebuilds the merged config. */
  async refresh(): Promise<void> {
    if (!this.store) return;
    const [registries, rules] = await Promise.all([this.store.listEntries('registry'), this.store.listEntries('rule')]);
    this.api = {
      registries: registries.map((r) => registrySchema.parse(r)),
      rules: rules.map((r) => ruleSchema.parse(r)),
    };
    this.current = this.merge(this.api);
  }

  private merge(api: { registries: RegistryConfig[]; rules: RuleConfig[] }): LoadedConfig {
    const config: Config = {
      ...this.file.config,
      registries: [...this.file.config.registries, ...api.registries],
      rules: [...this.file.config.rules, ...api.rules],
    };
    return resolveConfig(config, `${this.file.file} + API`);
  }

  /** Validates and stores an entry (`create` or `replace`); the file's entries are read-only. */
  async put(kind: Kind, body: unknown, mode: 'create' | 'replace', name?: string): Promise<RegistryConfig | RuleConfig> {
    if (!this.store) throw new ConfigChangeError(403, 'this service keeps no API-managed config');
    const schema = kind === 'registry' ? registrySchema : ruleSchema;
    const parsed = schema.safeParse(body, { reportInput: true });
    if (!parsed.success) throw new ConfigChangeError(400, describeIssue(parsed.error));
    const entry = parsed.data;
    if (name !== undefined && entry.name !== name) throw new ConfigChangeError(400, `name: "${entry.name}" does not match the path's "${name}"`);
    const origin = this.origin(kind, entry.name);
    if (origin === 'file') throw new ConfigChangeError(403, `${kind} "${entry.name}" is defined in the config file and is read-only`);
    if (mode === 'create' && origin === 'api') throw new ConfigChangeError(409, `${kind} "${entry.name}" already exists`);
    if (mode === 'replace' && origin !== 'api') throw new ConfigChangeError(404, `no ${kind} named "${entry.name}"`);
    const next = {
      registries: kind === 'registry' ? [...this.api.registries.filter((r) => r.name !== entry.name), entry as RegistryConfig] : this.api.registries,
      rules: kind === 'rule' ? [...this.api.rules.filter((r) => r.name !== entry.name), entry as RuleConfig] : this.api.rules,
    };
    this.check(next);
    const ok = await this.store.putEntry(kind, entry.name, body as Record<string, unknown>, mode);
    if (!ok) throw new ConfigChangeError(409, `${kind} "${entry.name}" changed meanwhile; try again`);
    await this.refresh();
    return entry;
  }

  /** Deletes an API-managed entry; a registry still used by a rule is refused. */
  async delete(kind: Kind, name: string): Promise<void> {
    if (!this.store) throw new ConfigChangeError(403, 'this service keeps no API-managed config');
    const origin = this.origin(kind, name);
    if (origin === 'file') throw new ConfigChangeError(403, `${kind} "${name}" is defined in the config file and is read-only`);
    if (origin !== 'api') throw new ConfigChangeError(404, `no ${kind} named "${name}"`);
    const next = {
      registries: kind === 'registry' ? this.api.registries.filter((r) => r.name !== name) : this.api.registries,
      rules: kind === 'rule' ? this.api.rules.filter((r) => r.name !== name) : this.api.rules,
    };
    this.check(next);
    await this.store.deleteEntry(kind, name);
    await this.refresh();
  }

  private check(next: { registries: RegistryConfig[]; rules: RuleConfig[] }): void {
    let merged: LoadedConfig;
    try {
      merged = this.merge(next);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigChangeError(400, err.issues.join('; '));
      throw err;
    }
    const problems = this.platformProblems(merged);
    if (problems.length > 0) throw new ConfigChangeError(400, problems.join('; '));
  }
}
