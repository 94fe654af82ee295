import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicatorError } from '../../errors.js';

/** Another live process owns the data dir. */
export class DataDirInUseError extends ReplicatorError {
  override name = 'DataDirInUseError';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super('DATA_DIR_IN_USE', `data dir ${dir} in use by pid ${pid}`);
  }
}

/** Who holds the lock: a pid and, where the OS tells it, that process's start time (pids are reused). */
interface Owner {
  pid: number;
  started: string | undefined;
}

/** A takeover left behind by a process that died in the middle of one (a window of microseconds). */
const TAKEOVER_STALE_MS = 10_000;
const ATTEMPTS = 50;

/**
 * Takes the data dir for this process, or throws DataDirInUseError naming the owner.
 *
 * The lock file holds `pid starttime` and is created complete and atomically (written under a
 * temporary name, then hard-linked into place), so it is never seen half-written. A lock is
 * stale when its process is gone, when its pid now belongs to another process (the start time
 * differs), or when the file is empty or unreadable garbage (no process of ours writes that).
 * Only one process at a time may remove a stale lock: it must first create the `lock.takeover`
 * directory (mkdir is atomic), so two processes starting together after a crash cannot both
 * remove the old lock and both think they own the dir.
 */
export async function lockDataDir(dir: string): Promise<() => void> {
  const path = join(dir, 'lock');
  const takeover = join(dir, 'lock.takeover');
  const me = `${process.pid} ${startTime(process.pid) ?? ''}`.trim();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (create(path, me)) {
      const release = () => {
        try {
          if (readFileSync(path, 'utf8') === me) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return release;
    }
    const owner = readOwner(path);
    if (owner && isAlive(owner)) throw new DataDirInUseError(dir, owner.pid);
    // Stale: remove it, one process at a time.
    if (takeOver(takeover)) {
      try {
        // Read again under the takeover lock: another process may have taken over meanwhile.
        const now = readOwner(path);
        if (now && isAlive(now)) throw new DataDirInUseError(dir, now.pid);
        removeIfExists(path);
      } finally {
        rmdirSync(takeover);
      }
    } else {
      await sleep(20);
    }
  }
  throw new ReplicatorError('DATA_DIR_LOCK', `cannot lock data dir ${dir}: another process keeps taking and releasing it`);
}

/** Creates the lock file with its whole content, atomically; false when one exists. */
function create(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/** The owner a lock file names; undefined when the file is gone, empty or not ours. */
function readOwner(path: string): Owner | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
  const m = /^(\d{1,10})(?: (\d{1,20}))?$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid > 0 ? { pid, started: m[2] } : undefined;
}

function isAlive(owner: Owner): boolean {
  if (owner.pid === process.pid) return false; // a lock we left ourselves (not released in this process)
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Alive: the same process only if it started when the lock says (a pid is reused after a reboot or wrap).
  const started = startTime(owner.pid);
  return owner.started === undefined || started === undefined || started === owner.started;
}

/** Field 22 of /proc/<pid>/stat (clock ticks since boot); undefined where there is no /proc. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function takeOver(path: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(path).mtimeMs > TAKEOVER_STALE_MS) rmdirSync(path);
    } catch {
      // gone meanwhile
    }
    return false;
  }
}

function removeIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
