import { ReplicatorError } from '../errors.js';
import type { Credentials, CredentialsSource } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import type { Source } from '../sources/source.js';
import type { ProviderApi } from './provider-api.js';

/**
 * What one registry type declares beyond the distribution spec, and nothing else: how its
 * credentials become what the registry takes (a cloud's access key exchanged for a registry
 * token), how a source of that type is listed where `_catalog` is not the way (Docker Hub's,
 * GitHub's, GitLab's APIs), and what a destination needs before a push (an organization, a
 * namespace, a repository key). Each type's module follows Harbor's adapter for that type
 * (goharbor/harbor `src/pkg/reg/adapter/<type>/`); the README's registry types table sums them up.
 */

/** The settings of a configured registry a type reads (a RegistryConfig has them; this folder sits below rules/). */
export interface RegistrySettings {
  name: string;
  type: string;
  url?: string | undefined;
  api_url?: string | undefined;
  region?: string | undefined;
  instance?: string | undefined;
  insecure: boolean;
}

/** Everything a type's module is given, once per configured registry. */
export interface TypeContext {
  registry: RegistrySettings;
  /** Names the registry in errors: `registries[2] (quay)`. */
  name: string;
  /** The registry's origin (`https://host[:port]`), as its client reaches it. */
  origin: URL;
  /** The registry's credential as configured (user and password, or access key and secret). */
  credentials: Credentials | undefined;
  /** `api_token`, resolved: a token for the provider's API besides the registry credential. */
  apiToken: string | undefined;
  /** HTTP to the provider's API, with the registry's TLS settings and connection rules. */
  api: ProviderApi;
  now: () => number;
}

/** What a destination repository needs before its first push; each namespace is asked once per runtime. */
export type RepositoryPreparer = (repository: string, signal?: AbortSignal) => Promise<void>;

/** One registry's behaviour, built once from its context (clients of the provider API shared by all three). */
export interface TypeRuntime {
  /** What the registry client sends (undefined: the configured credential, as is). */
  credentials?: CredentialsSource | undefined;
  /** Lists a source of this type (undefined: the distribution API, `_catalog` and `tags/list`). */
  source?: ((client: RegistryClient) => Source) | undefined;
  /** Makes a destination repository ready (only with `create_repositories`; undefined: nothing to do). */
  prepare?: RepositoryPreparer | undefined;
}

/** A registry type's module. */
export type RegistryTypeModule = (ctx: TypeContext) => TypeRuntime;

/** A configuration problem of one registry (a missing credential, an unusable URL): named, never a secret. */
export function settingsError(ctx: Pick<TypeContext, 'name'>, message: string): ReplicatorError {
  return new ReplicatorError('REGISTRY_SETTINGS', `${ctx.name}: ${message}`);
}
