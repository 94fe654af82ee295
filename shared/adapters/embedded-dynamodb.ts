import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { ReplicatorError } from '../errors.js';
import { DynamoDBServiceStore } from './dynamodb-service-store.js';
import { DynamoDBTaskStore, ensureTable } from './dynamodb-store.js';
import { WriteBehindTaskStore } from './write-behind-store.js';

/** Another process owns the data dir (dynalite's files cannot be shared). */
export class DataDirInUseError extends ReplicatorError {
  override name = 'DataDirInUseError';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super('DATA_DIR_IN_USE', `data dir ${dir} in use by pid ${pid}`);
  }
}

/** The embedded default's state: dynalite in this process, persisted under the data dir. */
export interface EmbeddedStore {
  /** The store for this process (writes of running tasks held back, see WriteBehindTaskStore). */
  store: WriteBehindTaskStore;
  /** The table itself. */
  dynamo: DynamoDBTaskStore;
  /** Webhook deliveries and API-managed config, same table. */
  service: DynamoDBServiceStore;
  client: DynamoDBClient;
  dir: string;
  close(): Promise<void>;
}

const TABLE = 'harbor-replicator';

/** Takes the data dir for this process: a lock file holding our pid; a dead owner's is taken over. */
function lock(dir: string): () => void {
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      const release = () => {
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new DataDirInUseError(dir, pid);
      unlinkSync(path); // left by a process that is gone
    }
  }
  throw new ReplicatorError('DATA_DIR_LOCK', `cannot lock data dir ${dir}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Opens the embedded store under `dir` (created if missing): one process per data dir, the
 * table created on first use, history kept across restarts.
 */
export async function openEmbeddedStore(dir: string): Promise<EmbeddedStore> {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  const release = lock(abs);
  try {
    const server = dynalite({ path: join(abs, 'dynamodb'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    const port = (server.address() as AddressInfo).port;
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'local',
      credentials: { accessKeyId: 'embedded', secretAccessKey: 'embedded' },
      maxAttempts: 3,
    });
    await ensureTable(client, TABLE);
    const dynamo = new DynamoDBTaskStore(client, TABLE, { counterFlushMs: 200 });
    const store = new WriteBehindTaskStore(dynamo);
    return {
      dynamo,
      service: new DynamoDBServiceStore(client, TABLE),
      // One process owns the data dir: counter moves are written in batches.
      store,
      client,
      dir: abs,
      close: async () => {
        await store.flush().catch(() => {});
        await dynamo.flushCounters().catch(() => {});
        client.destroy();
        await new Promise<void>((ok) => server.close(() => ok()));
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}
