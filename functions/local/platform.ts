// What the local hosts (`run`, `serve`) plug into the engine from AWS, each loaded on first use:
// a process whose config names no `{secret}` and no aws-ecr registry never loads the AWS SDK.
import type { RegistryPlatformLoader } from '../../shared/rules/registry-platform.js';
import type { SecretStore } from '../../shared/rules/ports.js';

/** `{secret: NAME}` references of the config file, read from Secrets Manager with the machine's AWS credentials. */
export function localSecretStore(): SecretStore {
  let store: Promise<SecretStore> | undefined;
  return {
    get: async (name) => {
      store ??= import('../../shared/adapters/aws/secrets-manager-store.js').then((m) => m.localSecretsManager());
      return (await store).get(name);
    },
  };
}

/** ECR's API, for aws-ecr registries configured without a credential. */
export const loadEcrLocally: RegistryPlatformLoader = async () => (await import('../../shared/adapters/aws/ecr-registry.js')).loadEcr();
