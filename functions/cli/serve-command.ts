import { ReplicatorError } from '../../shared/errors.js';
import { loadConfigForCommand } from './config-file.js';
import { EXIT } from './exit-codes.js';
import { DEFAULT_DATA_DIR } from './data-dir.js';

/** `harbor-replicator serve`: runs until SIGTERM/SIGINT, then shuts down within a bounded time. */
export async function runServe(flags: { config?: string; listen?: string; dataDir?: string }): Promise<number> {
  const loaded = await loadConfigForCommand(flags.config);
  if (!loaded) return EXIT.USAGE;
  const { startServer } = await import('../serve/server.js');
  let server;
  try {
    server = await startServer({ config: loaded, listen: flags.listen ?? '127.0.0.1:8080', dataDir: flags.dataDir ?? DEFAULT_DATA_DIR });
  } catch (err) {
    if (!(err instanceof ReplicatorError)) throw err;
    process.stderr.write(`harbor-replicator: ${err.message}\n`);
    return EXIT.USAGE; // a config the service cannot run with, or a data dir it cannot have
  }
  process.stderr.write(`harbor-replicator: serving on ${server.url} (webhook ${server.url}/webhooks/harbor, API ${server.url}/api/v1)\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`harbor-replicator: ${signal}: no new work; running tasks get 20 s to finish, then are handed back\n`);
      // However the shutdown goes, the process ends within a bounded time.
      setTimeout(() => process.exit(EXIT.FAILED), 30_000).unref();
      void server.close().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return EXIT.OK;
}
