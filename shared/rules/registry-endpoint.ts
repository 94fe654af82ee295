import { ReplicatorError } from '../errors.js';
import { addressRule, HostPatterns, urlRefusal, type ConnectPolicy } from '../registry/address-policy.js';
import { DEFAULT_RETRY_POLICY, HostStates } from '../registry/backoff.js';
import type { Credentials, CredentialsSource } from '../registry/auth.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { dockerConfigCredentials } from '../registry/docker-config.js';
import { createDispatcher, type HttpEvent } from '../registry/http.js';
import { isProxied, type ProxySettings } from '../registry/proxy.js';
import { DEFAULT_LIMITS, type Limits } from '../registry/limits.js';
import { HarborApi } from '../sources/harbor-api.js';
import { RegistrySource } from '../sources/registry-source.js';
import type { Source } from '../sources/source.js';
import { ProviderApi, registryHostOf, registryTypeModule, type RepositoryPreparer, type TypeRuntime } from '../registry-types/index.js';
import { oncePerKey } from '../util/once-per-key.js';
import { caOf, DEFAULT_MAX_CONCURRENCY, type RegistryConfig } from './config-schema.js';
import { HostThrottle, type ThrottleStore } from '../registry/host-throttle.js';
import { SharedRateLimiter, SharedSlots, type BudgetStore } from '../registry/shared-budget.js';
import type { ApiRegistryAccess, ApiRegistryDirectory } from './config-view.js';
import type { RegistryPlatform, RegistryPlatformLoader } from './registry-platform.js';
import { resolveSecret, type SecretSources } from './secrets.js';

/** Docker Hub's registry host, whatever URL the config names it by. */
const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';

/** Host, scheme and TLS settings of a configured registry, before credentials. */
export function endpointOf(reg: RegistryConfig): Pick<RegistryOptions, 'host' | 'scheme' | 'tlsVerify'> {
  let host: string;
  let scheme: 'https' | 'http' = 'https';
  if (reg.type === 'docker-hub' && (!reg.url || /^(hub\.docker\.com|docker\.io|index\.docker\.io|registry-1\.docker\.io)$/.test(new URL(reg.url).hostname))) {
    host = DOCKER_HUB_REGISTRY; // Harbor's docker-hub registries say https://hub.docker.com
  } else {
    const url = new URL(reg.url!);
    host = registryHostOf(reg.type, url); // ali-acr: cr.<region> (the API) names registry.<region>
    scheme = url.protocol === 'http:' ? 'http' : 'https';
  }
  return { host, scheme, tlsVerify: !reg.insecure };
}

/** The private CA (PEM text) of a registry of the config file: its file read, or its secret. */
export async function caTextOf(reg: RegistryConfig, path: string, secrets: SecretSources): Promise<string | undefined> {
  const ca = caOf(reg);
  if (!ca) return undefined;
  return resolveSecret(ca, `${path}.ca`, secrets);
}

/** The credentials of a registry of the config file: its secret resolved, or Docker's config. */
export async function credentialsOf(reg: RegistryConfig, path: string, secrets: SecretSources): Promise<Credentials | undefined> {
  const c = reg.credential;
  if (!c) return undefined;
  if ('docker_config' in c) return dockerConfigCredentials(reg.type === 'docker-hub' ? 'docker.io' : endpointOf(reg).host, secrets.env);
  return { username: c.username, password: await resolveSecret(c.password, `${path}.credential.password`, secrets) };
}

/**
 * Why an API registry's URL is refused, checked before it is stored (a clear 400): its host's
 * addresses against the rules its connections will be held to. Undefined when allowed.
 */
export async function apiRegistryUrlProblem(reg: RegistryConfig, network: NetworkRules): Promise<string | undefined> {
  const e = endpointOf(reg);
  const url = new URL(`${e.scheme}://${e.host}`);
  const rule = connectPolicyOf(reg, 'api', network).direct;
  // Through a proxy the name is the proxy's to resolve: the rules apply to the name itself.
  const refusal = (u: URL) => {
    if (!isProxied(network.proxy, u)) return urlRefusal(u, rule);
    const hostname = u.hostname.replace(/^\[(.*)\]$/, '$1');
    return Promise.resolve(rule.refusal(hostname, hostname));
  };
  // The provider's API gets the credentials too: held to the same rules.
  return (await refusal(url)) ?? (reg.api_url ? refusal(new URL(reg.api_url)) : undefined);
}

/** Shared by every client a process makes. */
export interface ClientDeps {
  secrets: SecretSources;
  hosts?: HostStates | undefined;
  onEvent?: ((e: HttpEvent) => void) | undefined;
  /**
   * AWS ECR's API (see registry-platform.ts): credentials of `aws-ecr` registries configured
   * without `credential`, and `create_repositories`. Given by the entry points as a loader, called
   * on first use: a process without such registries never loads the AWS SDK. Without it, such a
   * registry is an error naming it.
   */
  ecr?: RegistryPlatformLoader | undefined;
  /** The config's `limits:` (`limitsOf`), for every registry of the process; defaults otherwise. */
  limits?: Limits | undefined;
  /**
   * The registries managed through the API (their credentials are resolved by API rules only);
   * without it every registry is the config file's.
   */
  apiRegistries?: ApiRegistryDirectory | undefined;
  /** Where connections may go (see connectPolicyOf). */
  network?: NetworkRules | undefined;
  /**
   * The forward proxy of the process (the environment's; on AWS with its credential read from a
   * secret, hence a loader); a registry's `proxy_url` overrides it.
   */
  proxy?: ProxySettings | (() => Promise<ProxySettings | undefined>) | undefined;
  /**
   * Limits held across processes (every Lambda copier, through the table): throttled hosts, and
   * registries' explicit `requests_per_second` and `max_concurrency`. Without it they hold per process.
   */
  shared?: SharedLimitStores | undefined;
}

/** Where limits shared across processes live. */
export interface SharedLimitStores {
  /** Throttled hosts (429, `ratelimit-remaining: 0`). */
  throttle?: ThrottleStore | undefined;
  /** Explicit `requests_per_second` and `max_concurrency`. */
  budget?: BudgetStore | undefined;
  /** How long a copier trusts its last read of a host's throttle (default 1 s: table reads per host and copier). */
  throttleCacheMs?: number | undefined;
}

/** The connection rules of a process. */
export interface NetworkRules {
  /** Refuse loopback addresses (on AWS: the Lambda runtime API listens there). */
  refuseLoopback: boolean;
  /** `api.allowed_registry_hosts`: API registries and their token realms must be there. */
  allowedApiHosts?: readonly string[] | undefined;
  /** Where the process's forward proxy takes requests (the checks of proxied names apply to the name). */
  proxy?: ProxySettings | undefined;
}

/**
 * The connection rules of one registry's client. Link-local addresses (metadata endpoints) are
 * refused everywhere, redirects included; on AWS loopback too. An API registry's own requests
 * (itself, its token realm, its Link and Location URLs) must also be within
 * `api.allowed_registry_hosts`; the redirects it is sent to (object storage) need not. A config
 * file registry's own host is the operator's choice and is not checked.
 */
export function connectPolicyOf(reg: RegistryConfig, origin: 'file' | 'api', network: NetworkRules = { refuseLoopback: false }): ConnectPolicy {
  const refuseLoopback = network.refuseLoopback;
  const redirects = addressRule({ refuseLoopback });
  if (origin === 'api') {
    const allowedHosts = network.allowedApiHosts ? new HostPatterns(network.allowedApiHosts) : undefined;
    return { direct: addressRule({ refuseLoopback, allowedHosts }), redirects };
  }
  const exemptHost = new URL(`https://${endpointOf(reg).host}`).hostname.replace(/^\[(.*)\]$/, '$1');
  return { direct: addressRule({ refuseLoopback, exemptHost }), redirects };
}

/**
 * One registry client per configured registry and process, so `max_concurrency` and
 * `requests_per_second` hold across every copy that uses the registry.
 */
export class RegistryClients {
  private readonly clients = new Map<string, { version: string; client: Promise<RegistryClient> }>();
  private readonly runtimes = new Map<string, { version: string; runtime: Promise<TypeRuntime> }>();
  private ecrApi: Promise<RegistryPlatform> | undefined;

  constructor(private readonly deps: ClientDeps) {}

  /** What registries' answers may make us do: pages, index fan-out, manifest bytes, nesting. */
  get limits(): Limits {
    return this.deps.limits ?? DEFAULT_LIMITS;
  }

  /**
   * ECR's API, shared by every rule of the process (tokens per region, repositories checked);
   * `path` names the registry that needs it in the error when this process has none.
   */
  ecr(path: string): Promise<RegistryPlatform> {
    const load = this.deps.ecr;
    if (!load) return Promise.reject(new ReplicatorError('ECR_UNAVAILABLE', `${path} (aws-ecr): this command has no access to AWS ECR's API; give the registry a credential`));
    this.ecrApi ??= load();
    return this.ecrApi;
  }

  private apiEntry(reg: RegistryConfig): ApiRegistryAccess | undefined {
    return this.deps.apiRegistries?.apiRegistry(reg.name);
  }

  /**
   * An API registry's credentials, from API rules only; a config-file registry's, or for an
   * `aws-ecr` registry without any, ECR's tokens (AWS credentials of the process: the Lambda's
   * role, or the local AWS environment).
   */
  private async credentialsFor(reg: RegistryConfig, path: string, api: ApiRegistryAccess | undefined): Promise<CredentialsSource | undefined> {
    if (registryTypeModule(reg.type)) return (await this.typeRuntime(reg, path)).credentials;
    const fixed = api ? await api.credentials() : reg.credential ? await credentialsOf(reg, path, this.deps.secrets) : undefined;
    if (fixed || reg.type !== 'aws-ecr') return fixed;
    const ecr = await this.ecr(path);
    try {
      return ecr.credentialsFor(endpointOf(reg).host);
    } catch (err) {
      throw new ReplicatorError('ECR_HOST', `${path} (aws-ecr, no credential): ${(err as Error).message}`, { cause: err });
    }
  }

  /** `reg`'s private CA: an API registry's through API rules only (a secret the API may name), a config-file registry's as its config says. */
  private caFor(reg: RegistryConfig, path: string, api: ApiRegistryAccess | undefined): Promise<string | undefined> {
    return api ? api.ca() : caTextOf(reg, path, this.deps.secrets);
  }

  private processProxy: Promise<ProxySettings | undefined> | undefined;

  /** The forward proxy of `reg`'s requests: its own `proxy_url` (for every host), else the process's. */
  private async proxyOf(reg: RegistryConfig): Promise<ProxySettings | undefined> {
    if (reg.proxy_url) return { httpProxy: reg.proxy_url, httpsProxy: reg.proxy_url };
    const p = this.deps.proxy;
    this.processProxy ??= typeof p === 'function' ? p() : Promise.resolve(p);
    return this.processProxy;
  }

  /**
   * With limits shared by every copier (AWS): the hosts' throttle always, and `reg`'s
   * `requests_per_second` and `max_concurrency` when its config sets them.
   */
  private sharedLimitsOf(reg: RegistryConfig): Pick<RegistryOptions, 'throttle' | 'tokens' | 'sharedSlots'> {
    const { throttle, budget, throttleCacheMs } = this.deps.shared ?? {};
    if (throttle) this.throttle ??= new HostThrottle(throttle, { cacheMs: throttleCacheMs ?? 1_000 });
    return {
      throttle: this.throttle,
      tokens: budget && reg.requests_per_second ? new SharedRateLimiter(budget, `registry#${reg.name}#rps`, reg.requests_per_second) : undefined,
      sharedSlots: budget && reg.max_concurrency ? new SharedSlots(budget, `registry#${reg.name}#transfers`, reg.max_concurrency) : undefined,
    };
  }

  private throttle: HostThrottle | undefined;

  /** The connection rules of `reg`'s clients. */
  connectPolicy(reg: RegistryConfig): ConnectPolicy {
    return connectPolicyOf(reg, this.apiEntry(reg) ? 'api' : 'file', this.deps.network);
  }

  /** The client of `reg` (`path` names it in errors, e.g. `registries[1]`); a new one when the entry changed. */
  get(reg: RegistryConfig, path = `registries["${reg.name}"]`): Promise<RegistryClient> {
    const api = this.apiEntry(reg);
    const version = JSON.stringify([reg, api?.version ?? null]);
    const cached = this.clients.get(reg.name);
    if (cached?.version === version) return cached.client;
    const client = Promise.all([this.credentialsFor(reg, path, api), this.caFor(reg, path, api), this.proxyOf(reg)]).then(
      ([credentials, ca, proxy]) =>
        new RegistryClient({
          ...endpointOf(reg),
          ca,
          proxy,
          credentials,
          maxConcurrency: reg.max_concurrency ?? DEFAULT_MAX_CONCURRENCY,
          requestsPerSecond: reg.requests_per_second,
          ...this.sharedLimitsOf(reg),
          ...(this.deps.hosts ? { hosts: this.deps.hosts } : {}),
          connectPolicy: this.connectPolicy(reg),
          onEvent: this.deps.onEvent,
          limits: this.limits,
        }),
    );
    const entry = { version, client };
    client.catch(() => {
      if (this.clients.get(reg.name) === entry) this.clients.delete(reg.name);
    });
    this.clients.set(reg.name, entry);
    return client;
  }

  /**
   * What `reg`'s type does beyond the distribution spec (shared/registry-types/), built once per
   * registry entry: its credentials (as configured, or exchanged for a provider's token), its
   * lister and its namespace creator share one client of the provider's API.
   */
  private typeRuntime(reg: RegistryConfig, path = `registries["${reg.name}"]`): Promise<TypeRuntime> {
    const api = this.apiEntry(reg);
    const version = JSON.stringify([reg, api?.version ?? null]);
    const cached = this.runtimes.get(reg.name);
    if (cached?.version === version) return cached.runtime;
    const runtime = (async (): Promise<TypeRuntime> => {
      const [credentials, ca, apiToken, proxy] = await Promise.all([
        api ? api.credentials() : reg.credential ? credentialsOf(reg, path, this.deps.secrets) : undefined,
        this.caFor(reg, path, api),
        // Through the API a registry cannot hold api_token (api-registry.ts refuses it).
        !api && reg.api_token ? resolveSecret(reg.api_token, `${path}.api_token`, this.deps.secrets) : undefined,
        this.proxyOf(reg),
      ]);
      const e = endpointOf(reg);
      const ctx = {
        // The provider's API goes through the registry's forward proxy too (tunnelled: it gets credentials).
        dispatcher: createDispatcher({ verify: !reg.insecure, ca }, this.connectPolicy(reg), proxy ? { ...proxy, tunnelHttp: true } : undefined),
        hosts: this.deps.hosts ?? new HostStates(DEFAULT_RETRY_POLICY),
        onEvent: this.deps.onEvent,
      };
      const module = registryTypeModule(reg.type);
      const fixed: TypeRuntime = { credentials };
      if (!module) return fixed;
      const made = module({
        registry: reg,
        name: `${path} (${reg.type})`,
        origin: new URL(`${e.scheme}://${e.host}`),
        credentials,
        apiToken,
        api: new ProviderApi(ctx, `${path} (${reg.type})`, this.limits.maxPages),
        now: Date.now,
      });
      return { ...made, credentials: 'credentials' in made ? made.credentials : credentials };
    })();
    const entry = { version, runtime };
    runtime.catch(() => {
      if (this.runtimes.get(reg.name) === entry) this.runtimes.delete(reg.name);
    });
    this.runtimes.set(reg.name, entry);
    return runtime;
  }

  /** How a rule lists `reg` as its source (not Harbor's: HarborSource reads Harbor's API). */
  async source(reg: RegistryConfig, path: string, client: RegistryClient): Promise<Source> {
    const make = registryTypeModule(reg.type) ? (await this.typeRuntime(reg, path)).source : undefined;
    return make ? make(client) : new RegistrySource(client);
  }

  /**
   * What makes a destination repository of `reg` ready before its first push, with
   * `create_repositories` (its type's organization, namespace or repository key, each asked once
   * per repository here and per namespace by the type); undefined when there is nothing to do.
   */
  async preparer(reg: RegistryConfig, path: string): Promise<RepositoryPreparer | undefined> {
    if (!reg.create_repositories || !registryTypeModule(reg.type)) return undefined;
    const prepare = (await this.typeRuntime(reg, path)).prepare;
    if (!prepare) return undefined;
    const once = oncePerKey((repository) => prepare(repository));
    return (repository) => once(repository);
  }

  /** A client of Harbor's API at `reg` (type harbor), with the registry's credentials and connection rules. */
  async harborApi(reg: RegistryConfig, path: string, onEvent = this.deps.onEvent): Promise<HarborApi> {
    const api = this.apiEntry(reg);
    const [credentials, ca, proxy] = await Promise.all([api ? api.credentials() : credentialsOf(reg, path, this.deps.secrets), this.caFor(reg, path, api), this.proxyOf(reg)]);
    return new HarborApi({
      url: reg.url!,
      credentials,
      dispatcher: createDispatcher({ verify: !reg.insecure, ca }, this.connectPolicy(reg), proxy ? { ...proxy, tunnelHttp: credentials !== undefined } : undefined),
      onEvent,
      maxPages: this.limits.maxPages,
    });
  }
}
