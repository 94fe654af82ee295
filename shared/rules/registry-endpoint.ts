import type { EcrRegistries } from '../adapters/ecr-registry.js';
import { ReplicatorError } from '../errors.js';
import type { HostStates } from '../registry/backoff.js';
import type { Credentials, CredentialsSource } from '../registry/auth.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { dockerConfigCredentials } from '../registry/docker-config.js';
import type { HttpEvent } from '../registry/http.js';
import { DEFAULT_LIMITS, type Limits } from '../registry/limits.js';
import type { RegistryConfig } from './config-schema.js';
import { resolveSecret, type SecretSources } from './secrets.js';

/** Docker Hub's API host, whatever URL the config names it by. */
const DOCKER_HUB_API = 'registry-1.docker.io';

/** Host, scheme and TLS settings of a configured registry, before credentials. */
export function endpointOf(reg: RegistryConfig): Pick<RegistryOptions, 'host' | 'scheme' | 'tlsVerify' | 'caFile'> {
  let host: string;
  let scheme: 'https' | 'http' = 'https';
  if (reg.type === 'docker-hub') {
    host = DOCKER_HUB_API; // Harbor's docker-hub registries say https://hub.docker.com
  } else {
    const url = new URL(reg.url!);
    host = url.host;
    scheme = url.protocol === 'http:' ? 'http' : 'https';
  }
  return { host, scheme, tlsVerify: !reg.insecure, caFile: reg.ca_file };
}

/** The credentials of a configured registry: its secret resolved, or Docker's config. */
export async function credentialsOf(reg: RegistryConfig, path: string, secrets: SecretSources): Promise<Credentials | undefined> {
  const c = reg.credential;
  if (!c) return undefined;
  if ('docker_config' in c) return dockerConfigCredentials(reg.type === 'docker-hub' ? 'docker.io' : endpointOf(reg).host, secrets.env);
  return { username: c.username, password: await resolveSecret(c.password, `${path}.credential.password`, secrets) };
}

/** Shared by every client a process makes. */
export interface ClientDeps {
  secrets: SecretSources;
  hosts?: HostStates | undefined;
  onEvent?: ((e: HttpEvent) => void) | undefined;
  /**
   * AWS ECR's API: credentials of `aws-ecr` registries configured without `credential`, and
   * `create_repositories`. Default: the AWS SDK's, loaded on first use (a process without such
   * registries never loads it, so the local CLI works without AWS). Tests inject mocked clients.
   */
  ecr?: EcrRegistries | undefined;
  /** The config's `limits:` (`limitsOf`), for every registry of the process; defaults otherwise. */
  limits?: Limits | undefined;
}

/**
 * One registry client per configured registry and process, so `max_concurrency` and
 * `requests_per_second` hold across every copy that uses the registry.
 */
export class RegistryClients {
  private readonly clients = new Map<string, Promise<RegistryClient>>();
  private ecrApi: Promise<EcrRegistries> | undefined;

  constructor(private readonly deps: ClientDeps) {}

  /** What registries' answers may make us do: pages, index fan-out, manifest bytes, nesting. */
  get limits(): Limits {
    return this.deps.limits ?? DEFAULT_LIMITS;
  }

  /** ECR's API, shared by every rule of the process (tokens per region, repositories checked). */
  ecr(): Promise<EcrRegistries> {
    this.ecrApi ??= this.deps.ecr
      ? Promise.resolve(this.deps.ecr)
      : import('../adapters/ecr-registry.js').then((m) => new m.EcrRegistries());
    return this.ecrApi;
  }

  /**
   * Configured credentials, or for an `aws-ecr` registry without any, ECR's tokens (AWS
   * credentials of the process: the Lambda's role, or the local AWS environment).
   */
  private async credentialsFor(reg: RegistryConfig, path: string): Promise<CredentialsSource | undefined> {
    if (reg.type !== 'aws-ecr' || reg.credential) return credentialsOf(reg, path, this.deps.secrets);
    const ecr = await this.ecr();
    try {
      return ecr.credentials(endpointOf(reg).host);
    } catch (err) {
      throw new ReplicatorError('ECR_HOST', `${path} (aws-ecr, no credential): ${(err as Error).message}`, { cause: err });
    }
  }

  /** The client of `reg` (`path` names it in errors, e.g. `registries[1]`). */
  get(reg: RegistryConfig, path = `registries["${reg.name}"]`): Promise<RegistryClient> {
    let client = this.clients.get(reg.name);
    if (!client) {
      client = this.credentialsFor(reg, path).then(
        (credentials) =>
          new RegistryClient({
            ...endpointOf(reg),
            credentials,
            maxConcurrency: reg.max_concurrency,
            requestsPerSecond: reg.requests_per_second,
            ...(this.deps.hosts ? { hosts: this.deps.hosts } : {}),
            onEvent: this.deps.onEvent,
            limits: this.limits,
          }),
      );
      client.catch(() => this.clients.delete(reg.name));
      this.clients.set(reg.name, client);
    }
    return client;
  }
}
