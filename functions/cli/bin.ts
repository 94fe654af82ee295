// The `harbor-replicator` executable's entry: bundled by scripts/build.js into dist/cli/.
import { setFlagsFromString } from 'node:v8';
import { main } from './main.js';

// undici parses HTTP with llhttp compiled to WebAssembly. V8 tiers its one large parse function
// up to optimized code after a few responses: 60-80 ms of CPU on a worker thread and 35 MiB of
// compiler memory, which a short command (a 1-tag in-sync run: two pings, a tag list, two
// HEADs) never earns back, and whose end the process then waits for. A budget 50x V8's default
// leaves short commands on the baseline code; long runs still tier up once the parser is hot.
// Set before the first connection (undici compiles the parser lazily).
setFlagsFromString('--wasm-tiering-budget=100000000');

// The embedded store talks to its table through the AWS SDK, which warns on every start that
// its releases after January 2027 need Node 22. A local command uses no AWS account; the warning
// would only bury the command's own output. (The Lambda functions run on Node 22.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const code = await main(process.argv);
process.exitCode = code;

// The command is over: exit now instead of when Node has drained its background work. By then
// V8 is usually compiling undici's HTTP parser (WebAssembly) to optimized code on a worker
// thread, and a natural exit waits for that: 50-190 ms after a short run's last output (strace
// of a 1-tag in-sync run). What is written to stdout and stderr is flushed first; every handle
// the command opened (store, lock, sockets) is closed by the command itself.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);

/** Resolves once everything written to `stream` so far has been handed to the OS (or it failed). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}
