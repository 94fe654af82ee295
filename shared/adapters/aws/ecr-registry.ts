import { ECRClient } from '@aws-sdk/client-ecr';
import { ReplicatorError } from '../../errors.js';
import type { CredentialsProvider } from '../../registry/auth.js';
import type { RegistryPlatform, RegistryPlatformLoader } from '../../rules/registry-platform.js';
import { EcrAuthorizationTokens } from './ecr-auth.js';
import { EcrRepositories } from './ecr-repositories.js';

/** The account and region of an ECR registry host. */
export interface EcrHost {
  accountId: string;
  region: string;
}

/** `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, optionally with a port. */
const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$/i;

/** The account and region of an ECR registry host; undefined for any other host. */
export function parseEcrHost(host: string): EcrHost | undefined {
  const m = ECR_HOST.exec(host);
  return m ? { accountId: m[1]!, region: m[2]!.toLowerCase() } : undefined;
}

/** Makes the ECR API client of a region. */
export type EcrClientFactory = (region: string) => ECRClient;

/** How to reach ECR's API. */
export interface EcrRegistriesOptions {
  /** Default: the AWS SDK's client with the default credential chain (env, role, profile). */
  clientFor?: EcrClientFactory;
  /** See `EcrAuthorizationTokens`. */
  refreshMarginMs?: number;
  now?: () => number;
}

/**
 * ECR's API for the `aws-ecr` registries of a process: registry credentials and repository
 * creation, by registry host. One per process, so tokens (per region) and the repositories
 * already checked (per registry) are shared by every rule; an API client is made per region on
 * first use, so a process that never meets an ECR registry never makes one.
 */
export class EcrRegistries implements RegistryPlatform {
  private readonly clients = new Map<string, ECRClient>();
  private readonly tokens = new Map<string, EcrAuthorizationTokens>();
  private readonly repos = new Map<string, EcrRepositories>();
  private readonly clientFor: EcrClientFactory;

  constructor(private readonly opts: EcrRegistriesOptions = {}) {
    this.clientFor = opts.clientFor ?? ((region) => new ECRClient({ region }));
  }

  /** Credentials for the registry at `host`, refreshed before its token expires. */
  credentialsFor(host: string): CredentialsProvider {
    const { region } = this.hostOf(host, 'get registry credentials');
    let tokens = this.tokens.get(region);
    if (!tokens) {
      tokens = new EcrAuthorizationTokens({ client: this.client(region), region, refreshMarginMs: this.opts.refreshMarginMs, now: this.opts.now });
      this.tokens.set(region, tokens);
    }
    const t = tokens;
    return () => t.credentials();
  }

  /** Repository creation in the registry at `host`. */
  repositoriesAt(host: string): EcrRepositories {
    const { accountId, region } = this.hostOf(host, 'create repositories');
    const key = `${accountId}/${region}`;
    let repos = this.repos.get(key);
    if (!repos) {
      repos = new EcrRepositories({ client: this.client(region), registryId: accountId, host });
      this.repos.set(key, repos);
    }
    return repos;
  }

  private client(region: string): ECRClient {
    let c = this.clients.get(region);
    if (!c) this.clients.set(region, (c = this.clientFor(region)));
    return c;
  }

  private hostOf(host: string, purpose: string): EcrHost {
    const parsed = parseEcrHost(host);
    if (!parsed) {
      throw new ReplicatorError('ECR_HOST', `"${host}" is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com): cannot ${purpose} through ECR's API`);
    }
    return parsed;
  }
}

/** The loader the entry points give the engine (`ClientDeps.ecr`): one EcrRegistries per process, made on first use. */
export const loadEcr: RegistryPlatformLoader = async () => new EcrRegistries();
