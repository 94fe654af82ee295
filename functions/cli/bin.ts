// The `harbor-replicator` executable's entry: bundled by scripts/build.js into dist/cli/.
import { main } from './main.js';

// The embedded store talks to its table through the AWS SDK, which warns on every start that
// its releases after January 2027 need Node 22. A local command uses no AWS account; the warning
// would only bury the command's own output. (The Lambda functions run on Node 22.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// `harbor-replicator ... | head`: a reader that stops reading ends the command quietly, as
// Unix tools do, instead of a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv);
