import { ReplicatorError } from '../errors.js';
import type { Log } from '../observability/telemetry.js';
import type { ConfigStore } from './ports.js';
import type { Credentials } from '../registry/auth.js';
import { describeIssue } from '../util/schema.js';
import { parseApiRegistryBody, parseStoredApiRegistry, publicCredential, storedValue, type PublicApiCredential, type StoredApiCredential } from './api-registry.js';
import { ApiCredentialError, ApiSecrets } from './api-secrets.js';
import { registryRefName, ruleSchema, type Config, type RegistryConfig, type RuleConfig } from './config-schema.js';
import { ConfigError, resolveConfig, type LoadedConfig } from './load-config.js';

/** A request to change API-managed config that cannot be done: a status, a code and why. */
export class ConfigChangeError extends ReplicatorError {
  override name = 'ConfigChangeError';
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
    code = 'CONFIG_CHANGE',
  ) {
    super(code, message);
  }
}

type Kind = 'registry' | 'rule';

/** An API-managed registry as the service runs it. */
interface ApiRegistry {
  config: RegistryConfig;
  credential: StoredApiCredential | undefined;
  /** Why it cannot be used (an entry an older version stored): kept, never resolved. */
  invalid?: string | undefined;
}

/** What the registry clients need of API-managed registries (implemented by ConfigView). */
export interface ApiRegistryDirectory {
  /** The API registry of that name, or undefined for the config file's (and unknown names). */
  apiRegistry(name: string): ApiRegistryAccess | undefined;
}

/** One API registry, for its client: its credentials, resolved by API rules only. */
export interface ApiRegistryAccess {
  /** Changes when the entry changes (a new client is made then). */
  version: string;
  /** Its credentials (undefined: anonymous); throws REGISTRY_INVALID for an invalid entry. */
  credentials(): Promise<Credentials | undefined>;
  /** Its private CA (PEM), from a secret the API may name; undefined: the system roots only. */
  ca(): Promise<string | undefined>;
}

/** A registry or rule as the API shows it. */
export type PublicEntry = Record<string, unknown> & { name: string; origin: 'file' | 'api' };

export interface ConfigViewOptions {
  /** What the platform cannot run, checked before a change is stored (e.g. crons EventBridge cannot express). */
  platformProblems?: (config: LoadedConfig) => string[];
  /** API credentials' secrets (where literals are kept, which references are allowed). */
  apiSecrets?: ApiSecrets | undefined;
  /** Checks an API registry's URL before it is stored: why it is refused, or undefined. */
  registryUrlProblem?: ((registry: RegistryConfig) => Promise<string | undefined>) | undefined;
  /** Warnings about stored entries that cannot be used. */
  log?: Log | undefined;
}

/**
 * The config a service runs with: the file's registries and rules (read-only) and those
 * managed through the API (kept in the store), validated together by the same schema and
 * cross-checks, so an API change that would break a rule is refused with the reason. API
 * registries keep their credentials apart (their own types and resolution, see api-secrets.ts):
 * in the merged config they have none.
 */
export class ConfigView implements ApiRegistryDirectory {
  private current: LoadedConfig;
  private api: { registries: ApiRegistry[]; rules: RuleConfig[] } = { registries: [], rules: [] };
  private readonly apiSecrets: ApiSecrets;
  private readonly warned = new Set<string>();

  constructor(
    private readonly file: LoadedConfig,
    private readonly store: ConfigStore | undefined,
    private readonly opts: ConfigViewOptions = {},
  ) {
    this.current = file;
    this.apiSecrets = opts.apiSecrets ?? new ApiSecrets();
  }

  /** The merged config now. */
  get loaded(): LoadedConfig {
    return this.current;
  }

  /** Where an entry comes from. */
  origin(kind: Kind, name: string): 'file' | 'api' | undefined {
    const inFile = kind === 'registry' ? this.file.config.registries.some((r) => r.name === name) : this.file.config.rules.some((r) => r.name === name);
    if (inFile) return 'file';
    const inApi = kind === 'registry' ? this.api.registries.some((r) => r.config.name === name) : this.api.rules.some((r) => r.name === name);
    return inApi ? 'api' : undefined;
  }

  apiRegistry(name: string): ApiRegistryAccess | undefined {
    if (this.origin('registry', name) !== 'api') return undefined;
    const entry = this.api.registries.find((r) => r.config.name === name)!;
    return {
      version: JSON.stringify([entry.credential ?? null, entry.invalid ?? null]),
      credentials: async () => {
        if (entry.invalid) throw new ReplicatorError('REGISTRY_INVALID', `registry "${name}" (API) is invalid and is not used: ${entry.invalid}; replace or delete it`);
        return entry.credential ? this.apiSecrets.resolve(name, entry.credential) : undefined;
      },
      ca: async () => {
        const ca = entry.config.ca;
        // Only {secret} reaches here (parseApiRegistryBody refuses files); read under the API's rules.
        return ca && 'secret' in ca ? this.apiSecrets.readAllowed(name, ca.secret) : undefined;
      },
    };
  }

  /** The registries or rules as the API shows them: API credentials without their secrets. */
  entries(kind: Kind): PublicEntry[] {
    if (kind === 'rule') return this.current.config.rules.map((r) => ({ ...r, origin: this.origin('rule', r.name) ?? 'file' }));
    return this.current.config.registries.map((r) => {
      const api = this.origin('registry', r.name) === 'api' ? this.api.registries.find((x) => x.config.name === r.name) : undefined;
      if (!api) return { ...r, origin: 'file' as const };
      return publicRegistry(api);
    });
  }

  /** Reads the API-managed entries and rebuilds the merged config; unusable entries are set aside with a warning. */
  async refresh(): Promise<void> {
    if (!this.store) return;
    const [registries, rules] = await Promise.all([this.store.listEntries('registry'), this.store.listEntries('rule')]);
    const fileRegistries = new Set(this.file.config.registries.map((r) => r.name));
    const fileRules = new Set(this.file.config.rules.map((r) => r.name));
    const warnings: string[] = [];
    const apiRegistries: ApiRegistry[] = [];
    for (const value of registries) {
      const name = typeof value.name === 'string' ? value.name : '?';
      const stored = parseStoredApiRegistry(value);
      if (!stored.registry) {
        warnings.push(`registry "${name}" (API) is set aside: ${stored.invalid}`);
        continue;
      }
      if (fileRegistries.has(stored.registry.name)) {
        warnings.push(`registry "${name}" (API) is set aside: the config file defines a registry of that name`);
        continue;
      }
      if (stored.invalid) warnings.push(`registry "${name}" (API) is invalid and is not used: ${stored.invalid}; replace or delete it`);
      apiRegistries.push({ config: stored.registry, credential: stored.credential, invalid: stored.invalid });
    }
    const known = new Set([...fileRegistries, ...apiRegistries.map((r) => r.config.name)]);
    const apiRules: RuleConfig[] = [];
    for (const value of rules) {
      const parsed = ruleSchema.safeParse(value);
      const name = typeof value.name === 'string' ? value.name : '?';
      if (!parsed.success) {
        warnings.push(`rule "${name}" (API) is set aside: ${describeIssue(parsed.error)}`);
        continue;
      }
      const rule = parsed.data;
      const missing = [rule.src_registry, rule.dest_registry].map((r) => registryRefName(r, this.file.config.local_registry) ?? "Harbor's Local (no local_registry)").find((r) => !known.has(r));
      if (fileRules.has(rule.name) || missing) {
        warnings.push(`rule "${name}" (API) is set aside: ${missing ? `no registry named "${missing}"` : 'the config file defines a rule of that name'}`);
        continue;
      }
      apiRules.push(rule);
    }
    const next = { registries: apiRegistries, rules: apiRules };
    this.current = this.merge(next);
    this.api = next;
    for (const w of warnings) {
      if (this.warned.has(w)) continue;
      this.warned.add(w);
      this.opts.log?.warn('API-managed config entry not used', { problem: w });
    }
  }

  private merge(api: { registries: ApiRegistry[]; rules: RuleConfig[] }): LoadedConfig {
    const config: Config = {
      ...this.file.config,
      registries: [...this.file.config.registries, ...api.registries.map((r) => r.config)],
      rules: [...this.file.config.rules, ...api.rules],
    };
    return resolveConfig(config, `${this.file.file} + API`);
  }

  /** Validates and stores an entry (`create` or `replace`); the file's entries are read-only. Returns it as the API shows it. */
  async put(kind: Kind, body: unknown, mode: 'create' | 'replace', name?: string): Promise<PublicEntry> {
    if (!this.store) throw new ConfigChangeError(403, 'this service keeps no API-managed config');
    return kind === 'registry' ? this.putRegistry(this.store, body, mode, name) : this.putRule(this.store, body, mode, name);
  }

  private checkTarget(kind: Kind, entryName: string, mode: 'create' | 'replace', name: string | undefined): void {
    if (name !== undefined && entryName !== name) throw new ConfigChangeError(400, `name: "${entryName}" does not match the path's "${name}"`);
    const origin = this.origin(kind, entryName);
    if (origin === 'file') throw new ConfigChangeError(403, `${kind} "${entryName}" is defined in the config file and is read-only`);
    if (mode === 'create' && origin === 'api') throw new ConfigChangeError(409, `${kind} "${entryName}" already exists`);
    if (mode === 'replace' && origin !== 'api') throw new ConfigChangeError(404, `no ${kind} named "${entryName}"`);
  }

  private async putRule(store: ConfigStore, body: unknown, mode: 'create' | 'replace', name: string | undefined): Promise<PublicEntry> {
    const parsed = ruleSchema.safeParse(body, { reportInput: true });
    if (!parsed.success) throw new ConfigChangeError(400, describeIssue(parsed.error));
    const rule = parsed.data;
    this.checkTarget('rule', rule.name, mode, name);
    this.check({ registries: this.api.registries, rules: [...this.api.rules.filter((r) => r.name !== rule.name), rule] });
    const ok = await store.putEntry('rule', rule.name, body as Record<string, unknown>, mode);
    if (!ok) throw new ConfigChangeError(409, `rule "${rule.name}" changed meanwhile; try again`);
    await this.refresh();
    return { ...rule, origin: 'api' };
  }

  private async putRegistry(store: ConfigStore, body: unknown, mode: 'create' | 'replace', name: string | undefined): Promise<PublicEntry> {
    const input = parseApiRegistryBody(body);
    if ('problem' in input) throw new ConfigChangeError(400, input.problem);
    const reg = input.registry;
    this.checkTarget('registry', reg.name, mode, name);
    const previous = this.api.registries.find((r) => r.config.name === reg.name);
    const entry: ApiRegistry = { config: reg, credential: undefined };
    this.check({ registries: [...this.api.registries.filter((r) => r.config.name !== reg.name), entry], rules: this.api.rules });
    const refused = await this.opts.registryUrlProblem?.(reg);
    if (refused) throw new ConfigChangeError(400, `url: ${refused}`, 'URL_REFUSED');
    if (reg.ca && 'secret' in reg.ca) {
      const problem = this.apiSecrets.referenceProblem(reg.ca.secret);
      if (problem) throw new ConfigChangeError(400, `ca: ${problem}`);
    }
    try {
      // Last: a literal may be written to Secrets Manager here.
      entry.credential = await this.apiSecrets.keep(reg.name, input.credential, previous?.invalid ? undefined : previous?.credential);
    } catch (err) {
      if (err instanceof ApiCredentialError) throw new ConfigChangeError(400, err.message);
      throw err;
    }
    const ok = await store.putEntry('registry', reg.name, storedValue(reg, entry.credential), mode);
    if (!ok) throw new ConfigChangeError(409, `registry "${reg.name}" changed meanwhile; try again`);
    await this.refresh();
    return publicRegistry(entry);
  }

  /** Deletes an API-managed entry; a registry still used by a rule is refused. */
  async delete(kind: Kind, name: string): Promise<void> {
    if (!this.store) throw new ConfigChangeError(403, 'this service keeps no API-managed config');
    const origin = this.origin(kind, name);
    if (origin === 'file') throw new ConfigChangeError(403, `${kind} "${name}" is defined in the config file and is read-only`);
    if (origin !== 'api') throw new ConfigChangeError(404, `no ${kind} named "${name}"`);
    this.check({
      registries: kind === 'registry' ? this.api.registries.filter((r) => r.config.name !== name) : this.api.registries,
      rules: kind === 'rule' ? this.api.rules.filter((r) => r.name !== name) : this.api.rules,
    });
    await this.store.deleteEntry(kind, name);
    await this.refresh();
  }

  private check(next: { registries: ApiRegistry[]; rules: RuleConfig[] }): void {
    let merged: LoadedConfig;
    try {
      merged = this.merge(next);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigChangeError(400, err.issues.join('; '));
      throw err;
    }
    const problems = this.opts.platformProblems?.(merged) ?? [];
    if (problems.length > 0) throw new ConfigChangeError(400, problems.join('; '));
  }
}

/** An API registry as the API shows it. */
function publicRegistry(r: ApiRegistry): PublicEntry {
  const { credential: _none, ...fields } = r.config;
  const credential: PublicApiCredential | undefined = r.credential ? publicCredential(r.credential) : undefined;
  return { ...fields, ...(credential ? { credential } : {}), origin: 'api', ...(r.invalid ? { invalid: r.invalid } : {}) };
}
