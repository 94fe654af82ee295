import { RegistrySource } from '../sources/registry-source.js';
import type { RegistryTypeModule } from './registry-type.js';

/**
 * Azure Container Registry (Harbor's `azurecr` adapter): the distribution API with Basic
 * credentials (a service principal's app id and secret, or the admin user) exchanged at ACR's
 * token service (`/oauth2/token`, named by the registry's challenge) like any token realm. One
 * difference: ACR lists a repository's tags only with `metadata_read` in the token's scope, so
 * tag listing asks for it besides `pull`, as Harbor's authorizer does for `tags/list`.
 */
export const azureAcr: RegistryTypeModule = () => ({
  source: (client) => new RegistrySource(client, 1000, { tags: (repository) => [`repository:${repository}:metadata_read`] }),
});
