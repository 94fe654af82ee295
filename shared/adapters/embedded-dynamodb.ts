import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { Agent } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ReplicatorError } from '../errors.js';
import { lockDataDir } from './data-dir-lock.js';
import { DynamoDBServiceStore } from './dynamodb-service-store.js';
import { DynamoDBTaskStore, ensureTable } from './dynamodb-store.js';

export { DataDirInUseError } from './data-dir-lock.js';

/** The embedded default's state: dynalite in this process, persisted under the data dir. */
export interface EmbeddedStore {
  /** The store for this process. */
  store: DynamoDBTaskStore;
  /** The table itself. */
  dynamo: DynamoDBTaskStore;
  /** Webhook deliveries and API-managed config, same table. */
  service: DynamoDBServiceStore;
  client: DynamoDBClient;
  dir: string;
  close(): Promise<void>;
}

const TABLE = 'harbor-replicator';

/**
 * Opens the embedded store under `dir` (created if missing): one process per data dir, the
 * table created on first use, history kept across restarts.
 */
export async function openEmbeddedStore(dir: string): Promise<EmbeddedStore> {
  const abs = resolve(dir);
  privateDir(abs);
  const release = await lockDataDir(abs);
  try {
    // The table is served on a Unix socket inside the private data dir, never on a TCP port:
    // no other local user can reach it (dynalite checks no credentials).
    const { socket, cleanup } = socketPath(abs);
    const server = dynalite({ path: join(abs, 'dynamodb'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(socket, () => ok());
    });
    const agent = new Agent({ keepAlive: true });
    agent.createConnection = () => createConnection(socket);
    const client = new DynamoDBClient({
      endpoint: 'http://embedded.local',
      region: 'local',
      credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
      maxAttempts: 3,
      requestHandler: { httpAgent: agent },
    });
    await ensureTable(client, TABLE);
    const dynamo = new DynamoDBTaskStore(client, TABLE, { counterFlushMs: 200 });
    return {
      dynamo,
      service: new DynamoDBServiceStore(client, TABLE),
      // One process owns the data dir: counter moves are written in batches.
      store: dynamo,
      client,
      dir: abs,
      close: async () => {
        await dynamo.flushCounters().catch(() => {});
        client.destroy();
        agent.destroy();
        await new Promise<void>((ok) => server.close(() => ok()));
        cleanup();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * Creates the data dir 0700, or makes an existing one of ours 0700: it holds the history and the
 * API-managed registries, and no other local user may read or write them.
 */
function privateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory()) throw new ReplicatorError('DATA_DIR_INVALID', `data dir ${dir} is not a directory`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (err) {
    if (err instanceof ReplicatorError) throw err;
    throw new ReplicatorError('DATA_DIR_INVALID', `cannot use data dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Unix socket paths are limited to about 107 bytes. */
const MAX_SOCKET_PATH = 100;

/**
 * Where the table is served: `store.sock` in the data dir (a stale one from a killed process is
 * ours to remove, since we hold the lock), or a private temporary directory when that path is
 * too long for a socket.
 */
function socketPath(dir: string): { socket: string; cleanup: () => void } {
  const inDir = join(dir, 'store.sock');
  if (inDir.length <= MAX_SOCKET_PATH) {
    rmSync(inDir, { force: true });
    return { socket: inDir, cleanup: () => rmSync(inDir, { force: true }) };
  }
  const tmp = mkdtempSync(join(tmpdir(), 'harbor-replicator-')); // 0700
  const socket = join(tmp, 'store.sock');
  return {
    socket,
    cleanup: () => {
      try {
        unlinkSync(socket);
      } catch {
        // gone
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
