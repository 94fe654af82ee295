import type { CredentialsProvider } from '../registry/auth.js';

/**
 * What a registry's platform provides when the config leaves it out. Injected by the entry points
 * (the only implementation is AWS ECR's, in shared/adapters/aws/), so the engine never loads a
 * cloud SDK itself, and a process without such registries never loads one at all.
 */

/** Credentials for a registry configured without any (ECR: 12-hour tokens from the process's AWS credentials). */
export interface RegistryCredentialsProvider {
  /** Fresh credentials for the registry at `host`; throws a ReplicatorError when it cannot serve that host. */
  credentialsFor(host: string): CredentialsProvider;
}

/** Creates a missing repository at a destination that refuses pushes to one (ECR's CreateRepository). */
export interface RepositoryCreator {
  /** The repositories of the registry at `host`; throws a ReplicatorError when it cannot serve that host. */
  repositoriesAt(host: string): { ensure(repository: string): Promise<unknown> };
}

/** Both ports of one platform, loaded on first use. */
export type RegistryPlatform = RegistryCredentialsProvider & RepositoryCreator;
export type RegistryPlatformLoader = () => Promise<RegistryPlatform>;
