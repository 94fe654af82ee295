// The embedded store is private to the process that owns the data dir: the dir is 0700, the state
// is a 0600 SQLite file read in the process (no port, no socket), a second process gets
// DATA_DIR_IN_USE (exit 2) whatever the lock file says: a dead owner, an empty file, a pid reused
// by another process, two starts at once; a data dir of the old format is refused (exit 2).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CLI, runCli } from './support/cli.js';
import { freePort } from './support/registry.js';

const TOKEN = 'data-dir-test-token';
const env = { API_TOKEN: TOKEN };

/** TCP ports a process listens on (Linux: its socket fds matched against /proc/net/tcp{,6}). */
async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, inode is field 10.
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort();
}

/** Unix sockets a process listens on (its socket fds matched against /proc/net/unix, flag __SO_ACCEPTCON). */
async function listeningUnixSockets(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const text = await readFile('/proc/net/unix', 'utf8');
  // Num RefCount Protocol Flags Type St Inode [Path]
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 7 && inodes.has(f[6]!) && (parseInt(f[3]!, 16) & 0x10000) !== 0)
    .map((f) => f[7] ?? '(unnamed)');
}

/** Starts `serve`; resolves once /healthz answers, or with the exit code if it exited first. */
async function startServe(config: string, dataDir: string): Promise<{ child: ChildProcess; port: number; exited?: number; stderr: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) return { child, port, exited: child.exitCode, stderr: () => stderr };
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return { child, port, stderr: () => stderr };
    } catch {
      // not yet
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`serve did not start: ${stderr}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** This process's start time as /proc says it (what the lock file records beside the pid). */
async function startTimeOf(pid: number): Promise<string> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('the data dir is private to its owner', () => {
  let dir: string;
  let config: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hr-datadir-'));
    config = join(dir, 'replicator.yaml');
    await writeFile(config, 'registries: []\nrules: []\napi: {token: {env: API_TOKEN}}\n');
  });
  after(async () => {});

  it('a new data dir is created 0700, an existing open one is made 0700', async () => {
    const fresh = join(dir, 'fresh');
    const r = await runCli(['executions', 'list', '--data-dir', fresh]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stat(fresh)).mode & 0o777, 0o700);

    const open = join(dir, 'open');
    await mkdir(open, { mode: 0o755 });
    const again = await runCli(['executions', 'list', '--data-dir', open]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await stat(open)).mode & 0o777, 0o700);
  });

  it('serve listens on its --listen port only; the state is a 0600 file in the 0700 data dir, no socket', async () => {
    const state = join(dir, 'serve-state');
    const s = await startServe(config, state);
    try {
      assert.equal(s.exited, undefined, s.stderr());
      assert.deepEqual(await listeningPorts(s.child.pid!), [s.port]);
      assert.deepEqual(await listeningUnixSockets(s.child.pid!), [], 'no Unix socket listening either');
      assert.equal((await stat(state)).mode & 0o777, 0o700);
      const entries = await readdir(state);
      assert.ok(entries.includes('state.db'), entries.join(' '));
      for (const name of entries) {
        const st = await stat(join(state, name));
        assert.ok(!st.isSocket(), `${name} is a socket`);
        if (name.startsWith('state.db')) assert.equal(st.mode & 0o777, 0o600, name);
      }
    } finally {
      await stop(s.child);
    }
  });

  it('a data dir of the old format (an embedded DynamoDB under dynamodb/) is refused, named, with what to do: exit 2', async () => {
    const old = join(dir, 'old-format');
    await mkdir(join(old, 'dynamodb'), { recursive: true, mode: 0o700 });
    const r = await runCli(['executions', 'list', '--data-dir', old]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`data dir ${old} is in the old format`));
    assert.match(r.stderr, /history is not migrated: move .*dynamodb away .* or delete it/);
    const s = await startServe(config, old);
    assert.equal(s.exited, 2, s.stderr());
    assert.match(s.stderr(), /old format/);
    assert.deepEqual(await readdir(old), ['dynamodb'], 'nothing written beside it, the lock released');
  });

  it('a stale lock is taken over: a dead owner, an empty file, a pid now used by another process', async () => {
    const state = join(dir, 'stale');
    await mkdir(state, { mode: 0o700 });
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const cases = {
      'dead owner': `${dead.pid}`,
      'empty file': '',
      'garbage': 'not a pid\n',
      // Our own test process is alive, but it is not the process that wrote this lock (its start time differs).
      'reused pid': `${process.pid} 1`,
    };
    for (const [what, content] of Object.entries(cases)) {
      await writeFile(join(state, 'lock'), content);
      const r = await runCli(['executions', 'list', '--data-dir', state]);
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    }
  });

  it('a live owner named in the lock (pid and start time) keeps the dir: DATA_DIR_IN_USE, exit 2', async () => {
    const state = join(dir, 'live');
    await mkdir(state, { mode: 0o700 });
    // The lock of a live process: this test process, with its real start time.
    await writeFile(join(state, 'lock'), `${process.pid} ${await startTimeOf(process.pid)}`);
    const r = await runCli(['executions', 'list', '--data-dir', state]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), `harbor-replicator: data dir ${state} in use by pid ${process.pid}`);
  });

  it('two serves started at once on a dir with a stale lock: exactly one runs, the other exits 2', async () => {
    const state = join(dir, 'race');
    await mkdir(state, { mode: 0o700 });
    for (let round = 0; round < 3; round++) {
      await writeFile(join(state, 'lock'), '999999999'); // no such process
      const [a, b] = await Promise.all([startServe(config, state), startServe(config, state)]);
      try {
        const running = [a, b].filter((s) => s.exited === undefined);
        const refused = [a, b].filter((s) => s.exited !== undefined);
        assert.equal(running.length, 1, `round ${round}: ${a.stderr()} | ${b.stderr()}`);
        assert.equal(refused[0]!.exited, 2);
        assert.match(refused[0]!.stderr(), new RegExp(`data dir ${state} in use by pid ${running[0]!.child.pid}`));
      } finally {
        await Promise.all([stop(a.child), stop(b.child)]);
      }
    }
  });
});
