import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, stopProcess } from './registry.js';

/** Amazon's DynamoDB Local (inside the npm package amplify-dynamodb-simulator) on Java 17. */
export interface DynamoDBLocal {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts DynamoDB Local in memory on 127.0.0.1; resolves when it answers. */
export async function startDynamoDBLocal(): Promise<DynamoDBLocal> {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
  const port = await freePort();
  const child = spawn('java', ['-Djava.library.path=./DynamoDBLocal_lib', '-jar', 'DynamoDBLocal.jar', '-inMemory', '-port', String(port)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited: ${log}`);
    try {
      const res = await fetch(endpoint, { method: 'POST' });
      await res.arrayBuffer();
      return { endpoint, process: child, stop: () => stopProcess(child) };
    } catch {
      await sleep(100);
    }
  }
  await stopProcess(child);
  throw new Error(`DynamoDB Local did not start: ${log}`);
}
