// The `harbor-replicator` executable's entry: bundled by scripts/build.js into dist/cli/.
import { setFlagsFromString } from 'node:v8';
import { main } from './main.js';

// undici parses HTTP with llhttp compiled to WebAssembly. V8 tiers its one large parse function
// up to optimized code (TurboFan) once it is warm: 60-100 ms of CPU on a worker thread and a
// 35 MiB compiler zone, paid by every run of more than a handful of requests (and waited for at
// exit by a short one). The baseline code parses a registry's small headers about as fast, and a
// blob body is skipped over either way: the CLI keeps llhttp on it. Measured: 1-tag in-sync run
// 297 -> 212 ms CPU and 100 -> 66 MiB; 50-tag rule, first copy 1.03 -> 0.91 s CPU and 106 -> 89
// MiB, in-sync re-run 0.37 -> 0.26 s and 103 -> 69 MiB (medians of 6); the 1,000-tag first copy
// (4,200 requests) within noise. Set before the first connection (undici compiles it lazily).
setFlagsFromString('--liftoff-only');

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
