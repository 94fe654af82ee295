import type { HostStates } from '../registry/backoff.js';
import type { Credentials } from '../registry/auth.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { dockerConfigCredentials } from '../registry/docker-config.js';
import type { HttpEvent } from '../registry/http.js';
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
}

/**
 * One registry client per configured registry and process, so `max_concurrency` and
 * `requests_per_second` hold across every copy that uses the registry.
 */
export class RegistryClients {
  private readonly clients = new Map<string, Promise<RegistryClient>>();

  constructor(private readonly deps: ClientDeps) {}

  /** The client of `reg` (`path` names it in errors, e.g. `registries[1]`). */
  get(reg: RegistryConfig, path = `registries["${reg.name}"]`): Promise<RegistryClient> {
    let client = this.clients.get(reg.name);
    if (!client) {
      client = credentialsOf(reg, path, this.deps.secrets).then(
        (credentials) =>
          new RegistryClient({
            ...endpointOf(reg),
            credentials,
            maxConcurrency: reg.max_concurrency,
            requestsPerSecond: reg.requests_per_second,
            ...(this.deps.hosts ? { hosts: this.deps.hosts } : {}),
            onEvent: this.deps.onEvent,
          }),
      );
      client.catch(() => this.clients.delete(reg.name));
      this.clients.set(reg.name, client);
    }
    return client;
  }
}
