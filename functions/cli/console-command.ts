import { ReplicatorError } from '../../shared/errors.js';
import { EXIT } from './exit-codes.js';

/**
 * `harbor-replicator console --aws --api-url URL`: the replication console on this machine for a
 * deployment on AWS, whose API takes only SigV4-signed calls. Runs until SIGTERM/SIGINT.
 */
export async function runConsole(flags: { aws?: boolean; apiUrl?: string; listen?: string; region?: string }): Promise<number> {
  if (!flags.aws) {
    process.stderr.write(
      'harbor-replicator: console needs --aws (a deployment on AWS). With serve, the console is already there: open the URL serve prints (GET /).\n',
    );
    return EXIT.USAGE;
  }
  if (!flags.apiUrl) {
    process.stderr.write("harbor-replicator: console --aws needs --api-url (the stack's ApiUrl output, https://<id>.execute-api.<region>.amazonaws.com/api/v1)\n");
    return EXIT.USAGE;
  }
  const { startAwsConsole } = await import('../console/aws-console.js');
  let running;
  try {
    running = await startAwsConsole({ apiUrl: flags.apiUrl, listen: flags.listen, region: flags.region });
  } catch (err) {
    if (!(err instanceof ReplicatorError)) throw err;
    process.stderr.write(`harbor-replicator: ${err.message}\n`);
    return err.code === 'USAGE' ? EXIT.USAGE : EXIT.FAILED;
  }
  process.stderr.write(
    [
      `harbor-replicator: console on ${running.url}/ for ${running.apiBase} (region ${running.region}), calls signed with your AWS credentials`,
      `harbor-replicator: sign in with this one-time code (valid until this command stops): ${running.code}`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void running.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return EXIT.OK;
}
