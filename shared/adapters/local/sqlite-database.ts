import Sqlite, { type Database } from 'better-sqlite3';
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { ReplicatorError } from '../../errors.js';

/**
 * The embedded state's one SQLite file (better-sqlite3: synchronous, in this process): the
 * schema, its version, and how the connection is set up. The stores that use it are
 * `sqlite-store.ts` (executions and tasks) and `sqlite-service-store.ts` (deliveries, config).
 */

/** The schema this code writes (`PRAGMA user_version`); a file with a higher one is refused, a lower one migrated. */
export const SCHEMA_VERSION = 4;

/**
 * - `executions`: one row per execution. Its counters are a progress view kept in the same row,
 *   moved in the same transaction as the task that moves them (they cannot drift); a close still
 *   decides from a recount of the tasks, as every backend does. `AUTOINCREMENT`: ids are never
 *   reused, not even those of rows a crash rolled back.
 * - `tasks`: keyed (and clustered: WITHOUT ROWID) by execution and id, so an execution's tasks in
 *   id order are one range read; `tasks_by_status` lists one status of one execution and counts
 *   an execution's tasks per status (the recount) from the index alone.
 * - `executions_active`: a partial index of the open executions only, by rule and start: what the
 *   sweeper, recovery and single-active rules ask for, without reading history.
 * - `executions_by_start`, `_by_rule`, `_by_status`: the listings, newest first (start, then id).
 * - `deliveries`: webhook deliveries claimed (first claim wins until it expires, epoch seconds;
 *   NULL: kept).
 * - `config`: API-managed registries and rules, JSON.
 * - `drift` (version 2): each rule's last drift report (a reconcile's), JSON, with when it was taken.
 * - version 3: a task's `referrers` (its counts and the digests it pushed, JSON) and `accessories`
 *   (Harbor's, JSON); `referrers`: the referrers the replicator pushed to a destination, per
 *   subject (`target` = `host/repository@subject`), what deleting that subject may delete.
 * - `executions.bytes` (version 4): the bytes its tasks copied, moved with them like the counters
 *   (filled from the tasks for the executions already there).
 * - `task_logs` (version 4): a task's log, one row per run (`run`: the task's revision after that
 *   run's claim), its lines as one text; deleted with its task. Rows nothing of which is shown any
 *   more (newer runs fill the bounds) are deleted when a run is added (sqlite-task-log.ts).
 */
const SCHEMA = `
CREATE TABLE executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  rule TEXT NOT NULL,
  trigger TEXT NOT NULL,
  status TEXT NOT NULL,
  status_text TEXT,
  planned INTEGER NOT NULL,
  planned_total INTEGER,
  plan_error TEXT,
  plan_lease INTEGER,
  plan_token TEXT,
  replans INTEGER NOT NULL DEFAULT 0,
  stop_requested INTEGER NOT NULL DEFAULT 0,
  start_time TEXT NOT NULL,
  end_time TEXT,
  total INTEGER NOT NULL DEFAULT 0,
  pending INTEGER NOT NULL DEFAULT 0,
  scheduled INTEGER NOT NULL DEFAULT 0,
  running INTEGER NOT NULL DEFAULT 0,
  succeed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  stopped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_by_start ON executions (start_time, id);
CREATE INDEX executions_by_rule ON executions (rule, start_time, id);
CREATE INDEX executions_by_status ON executions (status, start_time, id);
CREATE INDEX executions_active ON executions (rule, start_time, id) WHERE status = 'InProgress';

CREATE TABLE tasks (
  execution_id INTEGER NOT NULL REFERENCES executions (id),
  id INTEGER NOT NULL,
  operation TEXT NOT NULL,
  source TEXT NOT NULL,
  destination TEXT NOT NULL,
  digest TEXT,
  status TEXT NOT NULL,
  status_text TEXT,
  error TEXT,
  attempts INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  requeues INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  start_time TEXT,
  end_time TEXT,
  lease_until INTEGER,
  lease_token TEXT,
  queued_at INTEGER,
  last_move TEXT,
  checkpoint TEXT,
  PRIMARY KEY (execution_id, id)
) WITHOUT ROWID;
CREATE INDEX tasks_by_status ON tasks (execution_id, status, id);

CREATE TABLE deliveries (
  key TEXT PRIMARY KEY,
  executions TEXT NOT NULL,
  expires INTEGER
);

CREATE TABLE config (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
`;

/** What each version adds to the one before (index 0: version 1 to 2, index 1: 2 to 3, index 2: 3 to 4). */
const MIGRATIONS = [
  `
CREATE TABLE drift (
  rule TEXT PRIMARY KEY,
  taken_at TEXT NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;
`,
  `
ALTER TABLE tasks ADD COLUMN referrers TEXT;
ALTER TABLE tasks ADD COLUMN accessories TEXT;
CREATE TABLE referrers (
  target TEXT NOT NULL,
  digest TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (target, digest)
) WITHOUT ROWID;
`,
  `
ALTER TABLE executions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE executions SET bytes = (SELECT coalesce(sum(bytes), 0) FROM tasks WHERE tasks.execution_id = executions.id);
CREATE TABLE task_logs (
  execution_id INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  run INTEGER NOT NULL,
  lines TEXT NOT NULL,
  line_count INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (execution_id, task_id, run),
  FOREIGN KEY (execution_id, task_id) REFERENCES tasks (execution_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
`,
];

/**
 * Opens (creating it 0600 when missing) the state file at `path` and brings its schema to
 * SCHEMA_VERSION. The caller holds the data dir's lock: this process is the only writer.
 */
export function openStateDatabase(path: string): Database {
  privateFile(path);
  let db: Database;
  try {
    db = new Sqlite(path);
  } catch (err) {
    throw new ReplicatorError('DATA_DIR_INVALID', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    configure(db);
    migrate(db, path);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof ReplicatorError) throw err;
    // Not a database (a stray file), or one SQLite cannot read.
    throw new ReplicatorError('DATA_DIR_INVALID', `cannot use ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The connection's settings, and why:
 * - `journal_mode = WAL`: a commit appends to the write-ahead log instead of rewriting pages in
 *   place twice (rollback journal), and a reader (an operator's `sqlite3`, a test) never blocks
 *   the writer. The -wal and -shm files get the database file's mode (0600).
 * - `synchronous = NORMAL`: in WAL mode a commit is durable against a crash or SIGKILL of this
 *   process (it is in the OS's cache), and the file is never corrupted; only a power loss or a
 *   kernel crash may lose the last commits before the next checkpoint's fsync. That loss is one
 *   the engine already repairs: a task back in Pending or Running is run again by the sweeper at
 *   start, and a run of a tag in sync costs one HEAD. FULL would fsync every task move.
 * - `foreign_keys = ON`: a task can only belong to an execution that exists.
 * - `temp_store = MEMORY`: sorts and GROUP BYs that spill use memory, not temporary files,
 *   which SQLite would put outside the private data dir (/var/tmp, /tmp).
 * - `journal_size_limit`: the WAL file is truncated back to 16 MiB after a checkpoint, so one
 *   large execution does not leave a large file behind.
 * - The busy timeout stays better-sqlite3's 5 s: only another connection to the file (an operator
 *   reading it) can hold a lock, and then briefly.
 * - No `locking_mode = EXCLUSIVE`: the data dir's lock already keeps other replicators out, and
 *   an exclusive lock would also keep out an operator's read-only `sqlite3`.
 */
function configure(db: Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('temp_store = MEMORY');
  db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`);
}

function migrate(db: Database, path: string): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new ReplicatorError('DATA_DIR_INVALID', `${path} was written by a newer harbor-replicator (schema ${version}; this one reads ${SCHEMA_VERSION})`);
  }
  db.transaction(() => {
    // A new file gets version 1 and every migration after it; an older file its missing ones.
    if (version === 0) db.exec(SCHEMA);
    for (const step of MIGRATIONS.slice(Math.max(0, version - 1))) db.exec(step);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Creates the state file 0600 (before SQLite does, with the umask's mode), or makes an existing one 0600. */
function privateFile(path: string): void {
  try {
    closeSync(openSync(path, 'a', 0o600));
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch (err) {
    throw new ReplicatorError('DATA_DIR_INVALID', `cannot use ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
