import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { EXIT } from './exit-codes.js';

export { EXIT };

function parseBool(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined || value === 'true') return true;
    if (value === 'false') return false;
    throw new InvalidArgumentError(`${flag} takes true or false.`);
  };
}

/** Builds the command-line program. Commands import their modules only when they run. */
export function buildProgram(): Command {
  const program = new Command('harbor-replicator')
    .description('Replicate container images between registries, the way Harbor replication rules do.')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('copy')
    .description('Copy one image (a tag or a digest, all platforms of an index) from SRC to DST.')
    .argument('<SRC>', 'source reference, [docker://]host/repo[:tag][@digest]')
    .argument('<DST>', 'destination reference; without tag or digest it takes the source tag')
    .option('--src-creds <user:password>', 'source credentials (else $HARBOR_REPLICATOR_SRC_CREDS, else Docker config)')
    .option('--dest-creds <user:password>', 'destination credentials (else $HARBOR_REPLICATOR_DEST_CREDS, else Docker config)')
    .addOption(
      new Option('--src-tls-verify [bool]', 'verify the source TLS certificate; false also allows plain HTTP (HTTPS tried first)')
        .argParser(parseBool('--src-tls-verify'))
        .default(true),
    )
    .addOption(
      new Option('--dest-tls-verify [bool]', 'verify the destination TLS certificate; false also allows plain HTTP')
        .argParser(parseBool('--dest-tls-verify'))
        .default(true),
    )
    .option('--src-ca-file <file>', 'PEM bundle of extra CAs trusted for the source')
    .option('--dest-ca-file <file>', 'PEM bundle of extra CAs trusted for the destination')
    .option('--override', 'replace a destination tag that points at another digest', true)
    .option('--no-override', 'skip the copy when the destination tag points at another digest')
    .option(
      '--chunk-size <size>',
      'upload in chunks of SIZE (POST, PATCH..., PUT), e.g. 10MiB; KiB/MiB/GiB binary, KB/MB/GB decimal; default: one streamed PUT per blob',
    )
    .option('--concurrency <n>', 'blobs copied at once', '4')
    .option('--no-referrers', 'copy the image alone: no signatures, SBOMs, attestations or other referrers')
    .option('--dry-run', 'say what would be copied (the image and each referrer under its subject, with its artifactType) and copy nothing')
    .option('--json', 'print one JSON summary on stdout (progress still goes to stderr)')
    .option('-q, --quiet', 'no progress output')
    .option('--debug', 'log every registry request (method, redacted URL, status) to stderr')
    .addHelpText(
      'after',
      `
Credentials, first found wins: --src-creds/--dest-creds, then HARBOR_REPLICATOR_SRC_CREDS /
HARBOR_REPLICATOR_DEST_CREDS, then "auths" in $DOCKER_CONFIG/config.json (~/.docker/config.json).
Credentials are never printed.

Referrers (signatures, SBOMs, attestations: the OCI 1.1 referrers API, the sha256-<hex> tag
schema, cosign's sha256-<hex>.sig/.att/.sbom tags) follow the image unless --no-referrers; one
that fails makes the copy fail with REFERRER_FAILED (the image itself stays copied).

Exit status: 0 copied, in sync or skipped (and --dry-run); 1 failed; 2 bad usage.

Examples:
  harbor-replicator copy --src-tls-verify=false --dest-tls-verify=false \\
    127.0.0.1:5000/library/nginx:1.27 127.0.0.1:5001/mirror/nginx
  harbor-replicator copy --json docker.io/library/alpine:3.20 harbor.example.com/hub/alpine:3.20`,
    )
    .action(async (src: string, dst: string, opts: Record<string, unknown>) => {
      const { runCopy } = await import('./copy-command.js');
      process.exitCode = await runCopy(src, dst, opts);
    });

  program
    .command('run')
    .description("Run one replication rule from the config: list the source, apply the rule's filters and names, copy.")
    .argument('<RULE>', 'the rule name')
    .option('--config <file>', 'config file (default: $HARBOR_REPLICATOR_CONFIG, else ./replicator.yaml)')
    .option('--data-dir <dir>', 'where executions and tasks are kept (default ./.harbor-replicator)')
    .option('--dry-run', 'print the plan (one line per artifact: source -> destination) and copy nothing')
    .option(
      '--reconcile',
      "run a drift reconcile (trigger reconcile): the whole rule, and with replicate_deletion the destination tags the source no longer has deleted; with --dry-run, print the drift (missing, different, extra) and change nothing",
    )
    .option('--json', 'print the plan or the drift (with --dry-run) or the finished execution as JSON')
    .option('-q, --quiet', 'no progress output')
    .option('-v, --verbose', 'also say what the filters left out, and why')
    .option('--debug', 'log every registry request (method, redacted URL, status) to stderr')
    .addHelpText(
      'after',
      '\nOne execution, fanned out into one task per tag/artifact, recorded in the data dir (see `executions`, `tasks`).\nCtrl-C stops it: pending tasks become Stopped, running copies cancel their uploads.\n\nExit status: 0 execution Succeed; 1 a task failed or was stopped (or, with --dry-run, cannot be named); 2 bad usage or config.\nWith --reconcile --dry-run: 0 no drift; 3 drift found; 1 the check failed or was incomplete; 2 bad usage or config.',
    )
    .action(async (rule: string, opts: Record<string, unknown>) => {
      const { runRule } = await import('./run-command.js');
      process.exitCode = await runRule(rule, opts);
    });

  program
    .command('serve')
    .description("Run the service: Harbor's webhook receiver, the management API, the scheduler and the workers, in one process.")
    .option('--config <file>', 'config file (default: $HARBOR_REPLICATOR_CONFIG, else ./replicator.yaml)')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8080')
    .option('--data-dir <dir>', 'where executions and tasks are kept (default ./.harbor-replicator)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain (with --tls-key); use it, or a TLS reverse proxy, whenever the console is reached over a network')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .addHelpText(
      'after',
      `
Routes: GET / (the replication console, in a browser; sign in with api.token or api.read_token),
POST /webhooks/harbor (Harbor's webhook; the whole Authorization header must equal
webhook.auth_header), /api/v1/... (Authorization: Bearer <api.token>, or <api.read_token> for
GETs only; /api/v1/openapi.json describes it), GET /healthz, GET /metrics (Prometheus). Logs are JSON lines on stdout.
Refuses to start without api.token, or without webhook.auth_header when a rule is event-based.
SIGTERM/SIGINT: stops accepting, lets running tasks finish for 20 s, hands the rest back.`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runServe } = await import('./serve-command.js');
      process.exitCode = await runServe(opts);
    });

  program
    .command('console')
    .description('Serve the replication console on this machine for a deployment on AWS, its API calls signed with your AWS credentials (SigV4).')
    .option('--aws', 'the API is on AWS, behind IAM (required: with serve, the console is at its GET /)')
    .option('--api-url <url>', "the deployed API: the stack's ApiUrl output, https://<id>.execute-api.<region>.amazonaws.com/api/v1")
    .option('--listen <host:port>', 'loopback address to listen on', '127.0.0.1:8081')
    .option('--region <region>', 'the region, when --api-url does not name it (a custom domain)')
    .addHelpText(
      'after',
      `
Prints a one-time code at start: the page asks for it in its token field. Credentials come from
the AWS default chain (AWS_PROFILE, environment, SSO, instance role) and stay in this process: the
browser gets the API's answers, never a key or a signature. Requests naming another Host (DNS
rebinding) or coming from another site's page (Origin) are refused. What the page may do is
what your IAM identity may do (execute-api:Invoke on the API's routes): with GET-only
permissions it shows everything, and API Gateway refuses Run and Stop (403).`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runConsole } = await import('./console-command.js');
      process.exitCode = await runConsole(opts);
    });

  const dataDirHelp = 'the data dir to read (default ./.harbor-replicator)';
  const serverHelp = 'read a running serve through its API instead (token in $HARBOR_REPLICATOR_TOKEN)';
  const executions = program.command('executions').description('Executions (rule runs) recorded in the data dir.');
  executions
    .command('list')
    .description('List executions, newest first.')
    .option('--rule <name>', 'only this rule')
    .option('--status <status>', 'InProgress, Succeed, Failed or Stopped')
    .option('--trigger <trigger>', 'manual, scheduled, event_based or reconcile')
    .option('--limit <n>', 'at most this many', '20')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--server <url>', serverHelp)
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const { listExecutions } = await import('./executions-command.js');
      process.exitCode = await listExecutions(opts);
    });
  executions
    .command('show')
    .description('Show one execution with its task counts.')
    .argument('<ID>', 'execution id')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--server <url>', serverHelp)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Record<string, unknown>) => {
      const { showExecution } = await import('./executions-command.js');
      process.exitCode = await showExecution(id, opts);
    });
  program
    .command('tasks')
    .description("List the tasks of an execution (one per tag/artifact), or print one task's log with --log.")
    .argument('<EXECUTION_ID>', 'execution id')
    .option('--status <status>', 'Pending, Scheduled, Running, Stopped, Error or Success')
    .option('--log <TASK>', "print the log of task TASK (its id in the list) instead: a line per step of its runs, oldest first")
    .option('--data-dir <dir>', dataDirHelp)
    .option('--server <url>', serverHelp)
    .option('--json', 'print JSON (with --log: an array of the lines)')
    .addHelpText(
      'after',
      `
A task's log: "<time> <level> <step> <message> key=value..." per line (steps: task, resolve,
blob, manifest, referrers, delete, http), the newest 200 lines within 64 KiB across its runs.
A run's lines are written when it ends, fails, is retried or hands over: a running task shows
the runs before it. Credentials never appear in it.

Exit status: 0 listed or printed; 1 no such execution or task, or the server failed; 2 bad usage
or an unusable data dir.`,
    )
    .action(async (id: string, opts: Record<string, unknown>) => {
      const { listTasks, showTaskLog } = await import('./executions-command.js');
      process.exitCode = opts.log !== undefined ? await showTaskLog(id, opts) : await listTasks(id, opts);
    });

  const config = program.command('config').description('Work with the config file.');
  config
    .command('check')
    .description('Validate the config (schema, cron, secrets resolvable) and print one line per rule; secrets are never printed.')
    .option('--config <file>', 'config file (default: $HARBOR_REPLICATOR_CONFIG, else ./replicator.yaml)')
    .addHelpText('after', '\nExit status: 0 valid; 2 invalid (each problem is printed with its path, e.g. rules[2].filters[0].decoration).')
    .action(async (opts: Record<string, unknown>) => {
      const { runConfigCheck } = await import('./config-command.js');
      process.exitCode = await runConfigCheck(opts);
    });

  return program;
}

/** Runs the CLI with `argv`; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return EXIT.OK;
      }
      return EXIT.USAGE; // commander has printed the reason

    }
    process.stderr.write(`harbor-replicator: ${(err as Error).message}\n`);
    return EXIT.FAILED;
  }
}
