import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ReplicatorError } from '../../errors.js';
import { lockDataDir } from './data-dir-lock.js';
import { openStateDatabase } from './sqlite-database.js';
import { SqliteServiceStore } from './sqlite-service-store.js';
import { SqliteTaskStore } from './sqlite-store.js';

export { DataDirInUseError } from './data-dir-lock.js';

/** The embedded default's state: one SQLite file in the data dir, in this process. */
export interface EmbeddedStore {
  /** Executions and tasks. */
  store: SqliteTaskStore;
  /** Webhook deliveries and API-managed config, same file. */
  service: SqliteServiceStore;
  /** The data dir, absolute. */
  dir: string;
  close(): Promise<void>;
}

/** The state file in the data dir. */
export const STATE_FILE = 'state.db';

/**
 * Opens the embedded store under `dir` (created if missing, private to its owner): one process
 * per data dir, history kept across restarts. Nothing listens anywhere: the store is a file
 * this process reads and writes, and no AWS SDK is loaded for it.
 */
export async function openEmbeddedStore(dir: string): Promise<EmbeddedStore> {
  const abs = resolve(dir);
  privateDir(abs);
  const release = await lockDataDir(abs);
  try {
    refuseOldFormat(abs);
    const db = openStateDatabase(join(abs, STATE_FILE));
    const service = new SqliteServiceStore(db);
    service.pruneDeliveries();
    let closed = false;
    return {
      store: new SqliteTaskStore(db),
      service,
      dir: abs,
      close: async () => {
        if (closed) return;
        closed = true;
        db.close();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * A data dir of the versions that kept their state in an embedded DynamoDB (dynalite, under
 * `dynamodb/`). Its history is not migrated: refused, saying what to do, rather than silently
 * starting an empty history beside it.
 */
function refuseOldFormat(dir: string): void {
  const old = join(dir, 'dynamodb');
  if (!existsSync(old)) return;
  throw new ReplicatorError(
    'DATA_DIR_OLD_FORMAT',
    `data dir ${dir} is in the old format (${old}, an embedded DynamoDB), which this version does not read; ` +
      `history is not migrated: move ${old} away (to keep the old history) or delete it, then run again, or use another --data-dir`,
  );
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
