import { ReplicatorError } from '../../shared/errors.js';
import { ConfigError, loadConfig, type LoadedConfig } from '../../shared/rules/load-config.js';

/** The config file a command uses: `--config`, else `$HARBOR_REPLICATOR_CONFIG`, else ./replicator.yaml. */
export function configPath(flag: string | undefined): string {
  return flag ?? process.env.HARBOR_REPLICATOR_CONFIG ?? 'replicator.yaml';
}

/**
 * Loads the config for a command; on a bad config prints the problems (each with its path)
 * and resolves to undefined, so the command stops before doing anything.
 */
export async function loadConfigForCommand(flag: string | undefined): Promise<LoadedConfig | undefined> {
  try {
    return await loadConfig(configPath(flag));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ReplicatorError) {
      process.stderr.write(`harbor-replicator: ${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}
