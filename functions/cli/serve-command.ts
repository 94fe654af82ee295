import { ReplicatorError } from '../../shared/errors.js';
import { loadConfigForCommand } from './config-file.js';
import { EXIT } from './exit-codes.js';
import { DEFAULT_DATA_DIR } from './data-dir.js';

/** `harbor-replicator serve`: runs until SIGTERM/SIGINT, then shuts down within a bounded time. */
export async function runServe(flags: { config?: string; listen?: string; dataDir?: string; tlsCert?: string; tlsKey?: string }): Promise<number> {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    process.stderr.write('harbor-replicator: --tls-cert and --tls-key go together (the certificate chain and its private key)\n');
    return EXIT.USAGE;
  }
  const loaded = await loadConfigForCommand(flags.config);
  if (!loaded) return EXIT.USAGE;
  const { startServer, isLoopbackListen } = await import('../serve/server.js');
  const listen = flags.listen ?? '127.0.0.1:8080';
  const tls = flags.tlsCert && flags.tlsKey ? { certFile: flags.tlsCert, keyFile: flags.tlsKey } : undefined;
  let server;
  try {
    server = await startServer({ config: loaded, listen, dataDir: flags.dataDir ?? DEFAULT_DATA_DIR, tls });
  } catch (err) {
    if (!(err instanceof ReplicatorError)) throw err;
    process.stderr.write(`harbor-replicator: ${err.message}\n`);
    return EXIT.USAGE; // a config the service cannot run with, or a data dir it cannot have
  }
  process.stderr.write(`harbor-replicator: serving on ${server.url} (console ${server.url}/, webhook ${server.url}/webhooks/harbor, API ${server.url}/api/v1)\n`);
  if (!tls && !isLoopbackListen(listen)) {
    process.stderr.write('harbor-replicator: warning: plain HTTP on a network address: tokens cross the network in clear; use --tls-cert/--tls-key or a TLS reverse proxy\n');
  }
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
