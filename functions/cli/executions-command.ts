import { EXECUTION_STATUSES, TASK_STATUSES, TRIGGERS, type Execution, type ExecutionStatus, type Task, type TaskStatus, type Trigger } from '../../shared/executions/model.js';
import { ReplicatorError, UsageError } from '../../shared/errors.js';
import type { TaskStore } from '../../shared/executions/ports.js';
import { formatBytes } from '../../shared/util/units.js';
import { EXIT } from './exit-codes.js';
import { DEFAULT_DATA_DIR, isDataDirProblem } from './data-dir.js';
import { executionSummary, taskRef } from './run-progress.js';

interface ReadFlags {
  dataDir?: string;
  server?: string;
  json?: boolean;
  rule?: string;
  status?: string;
  trigger?: string;
  limit?: string;
  log?: string;
}

/** What the read commands need: the data dir's store, or a running serve's API. */
type Reader = Pick<TaskStore, 'listExecutions' | 'getExecution' | 'listTasks'> & {
  /** A task's log, or why there is none to read (no such execution, no such task). */
  readLog(executionId: string, taskId: number): Promise<{ lines: string[] } | { missing: string }>;
};

/** The data dir's store as a Reader. */
function storeReader(store: TaskStore): Reader {
  return {
    getExecution: (id) => store.getExecution(id),
    listExecutions: (q) => store.listExecutions(q),
    listTasks: (id, q) => store.listTasks(id, q),
    readLog: async (executionId, taskId) => {
      if (!(await store.getExecution(executionId))) return { missing: `no execution ${executionId}` };
      if (!(await store.getTask(executionId, taskId))) return { missing: `no task ${taskId} in execution ${executionId}` };
      return { lines: await store.taskLog(executionId, taskId) };
    },
  };
}

/**
 * Opens the data dir (or, with --server, the API of a running serve, which holds the data dir)
 * for reading, runs `fn`, closes it; errors become one line and exit codes.
 */
async function withStore(flags: ReadFlags, fn: (store: Reader) => Promise<number>): Promise<number> {
  let embedded;
  try {
    if (flags.server) return await fn(apiReader(flags.server));
    const { openEmbeddedStore } = await import('../../shared/adapters/local/embedded-store.js');
    embedded = await openEmbeddedStore(flags.dataDir ?? DEFAULT_DATA_DIR);
    return await fn(storeReader(embedded.store));
  } catch (err) {
    if (!(err instanceof ReplicatorError)) throw err;
    process.stderr.write(`harbor-replicator: ${err.message}\n`);
    return err instanceof UsageError || isDataDirProblem(err) ? EXIT.USAGE : EXIT.FAILED;
  } finally {
    await embedded?.close();
  }
}

/** The read side of the management API, with the token from HARBOR_REPLICATOR_TOKEN. */
function apiReader(server: string): Reader {
  const token = process.env.HARBOR_REPLICATOR_TOKEN;
  if (!token) throw new UsageError('--server: set HARBOR_REPLICATOR_TOKEN to the API token');
  const fetchApi = async (path: string, query: Record<string, string | number | undefined>, accept: string) => {
    const url = new URL(`/api/v1${path}`, server);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    try {
      return await fetch(url, { headers: { authorization: `Bearer ${token}`, accept } });
    } catch (err) {
      throw new ReplicatorError('SERVER_UNREACHABLE', `cannot reach ${server}: ${(err as Error).message}`);
    }
  };
  const get = async (path: string, query: Record<string, string | number | undefined>) => {
    const res = await fetchApi(path, query, 'application/json');
    if (res.status === 404) return undefined;
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    if (!res.ok) throw new ReplicatorError('SERVER_ERROR', `${server} answered ${res.status}: ${body.error?.message ?? ''}`);
    return body;
  };
  return {
    getExecution: async (id) => (await get(`/executions/${encodeURIComponent(id)}`, {})) as Execution | undefined,
    listExecutions: async (q) => {
      const body = (await get('/executions', { rule: q.rule, status: q.status, trigger: q.trigger, limit: q.limit, cursor: q.cursor })) as { items: Execution[]; next_cursor: string | null };
      return { items: body.items, cursor: body.next_cursor ?? undefined };
    },
    listTasks: async (id, q) => {
      const body = (await get(`/executions/${encodeURIComponent(id)}/tasks`, { status: q.status, limit: q.limit, cursor: q.cursor })) as { items: Task[]; next_cursor: string | null } | undefined;
      return { items: body?.items ?? [], cursor: body?.next_cursor ?? undefined };
    },
    readLog: async (executionId, taskId) => {
      const res = await fetchApi(`/executions/${encodeURIComponent(executionId)}/tasks/${taskId}/log`, {}, 'text/plain');
      if (res.ok) {
        const text = await res.text();
        return { lines: text === '' ? [] : text.replace(/\n$/, '').split('\n') };
      }
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      if (res.status === 404) return { missing: body.error?.message ?? `no task ${taskId} in execution ${executionId}` };
      throw new ReplicatorError('SERVER_ERROR', `${server} answered ${res.status}: ${body.error?.message ?? ''}`);
    },
  };
}

function pick<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  const hit = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  if (!hit) throw new UsageError(`${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  return hit;
}

function limitOf(flags: ReadFlags): number {
  const n = Number(flags.limit ?? 20);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--limit: "${flags.limit}" must be an integer from 1 to 1000`);
  return n;
}

const duration = (e: Execution) => {
  if (!e.endTime) return '-';
  return `${((Date.parse(e.endTime) - Date.parse(e.startTime)) / 1000).toFixed(1)}s`;
};

/** An execution's bytes, readable (an older serve's API may not send them). */
const bytesOf = (e: Execution) => (e.bytes ? formatBytes(e.bytes) : '0 B');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** `harbor-replicator executions list`: newest first. */
export async function listExecutions(flags: ReadFlags): Promise<number> {
  return withStore(flags, async (store) => {
    const status = pick<ExecutionStatus>(flags.status, EXECUTION_STATUSES, '--status');
    const trigger = pick<Trigger>(flags.trigger, TRIGGERS, '--trigger');
    const page = await store.listExecutions({ rule: flags.rule, status, trigger, limit: limitOf(flags) });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(page.items)}\n`);
      return EXIT.OK;
    }
    if (page.items.length === 0) {
      process.stdout.write('no executions\n');
      return EXIT.OK;
    }
    const rows = [['ID', 'RULE', 'TRIGGER', 'STATUS', 'TOTAL', 'SUCCEED', 'FAILED', 'STOPPED', 'IN PROGRESS', 'BYTES', 'STARTED', 'DURATION']];
    for (const e of page.items) {
      const c = e.counts;
      rows.push([e.id, e.rule, e.trigger, e.status, String(c.total), String(c.succeed), String(c.failed), String(c.stopped), String(c.pending + c.scheduled + c.running), bytesOf(e), e.startTime, duration(e)]);
    }
    process.stdout.write(`${table(rows)}\n`);
    return EXIT.OK;
  });
}

/** `harbor-replicator executions show ID`. */
export async function showExecution(id: string, flags: ReadFlags): Promise<number> {
  return withStore(flags, async (store) => {
    const e = await store.getExecution(id);
    if (!e) {
      process.stderr.write(`harbor-replicator: no execution ${id}\n`);
      return EXIT.FAILED;
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(e)}\n`);
      return EXIT.OK;
    }
    process.stdout.write(
      `${executionSummary(e)}\n` +
        `rule ${e.rule}, trigger ${e.trigger}, ${bytesOf(e)} copied, started ${e.startTime}${e.endTime ? `, ended ${e.endTime} (${duration(e)})` : ''}\n`,
    );
    return EXIT.OK;
  });
}

/** `harbor-replicator tasks EXECUTION_ID [--status S]`: every task, streamed page by page. */
export async function listTasks(executionId: string, flags: ReadFlags): Promise<number> {
  return withStore(flags, async (store) => {
    const status = pick<TaskStatus>(flags.status, TASK_STATUSES, '--status');
    if (!(await store.getExecution(executionId))) {
      process.stderr.write(`harbor-replicator: no execution ${executionId}\n`);
      return EXIT.FAILED;
    }
    const out = process.stdout;
    let cursor: string | undefined;
    let n = 0;
    if (flags.json) out.write('[');
    do {
      const page = await store.listTasks(executionId, { status, limit: 500, cursor });
      if (flags.json) {
        for (const t of page.items) out.write(`${n++ ? ',' : ''}${JSON.stringify(t)}`);
      } else {
        const rows: string[][] = n === 0 ? [['ID', 'OPERATION', 'STATUS', 'SOURCE', 'DESTINATION', 'ATTEMPTS', 'BYTES', 'TEXT']] : [];
        for (const t of page.items) rows.push(taskRow(t));
        n += page.items.length;
        if (rows.length > 0) out.write(`${table(rows)}\n`);
      }
      cursor = page.cursor;
    } while (cursor);
    if (flags.json) out.write(']\n');
    else if (n === 0) out.write(`no tasks${status ? ` with status ${status}` : ''}\n`);
    return EXIT.OK;
  });
}

/**
 * `harbor-replicator tasks EXECUTION_ID --log TASK`: one task's log, a line per step of its runs,
 * oldest first (as stored: the newest 200 lines within 64 KiB).
 */
export async function showTaskLog(executionId: string, flags: ReadFlags): Promise<number> {
  return withStore(flags, async (store) => {
    if (flags.status !== undefined) throw new UsageError("--log prints one task's log; --status filters the task list: use one of them");
    const taskId = /^[1-9][0-9]{0,8}$/.test(flags.log ?? '') ? Number(flags.log) : undefined;
    if (taskId === undefined) throw new UsageError(`--log: "${flags.log}" is not a task id (1, 2, ... as \`tasks ${executionId}\` lists them)`);
    const log = await store.readLog(executionId, taskId);
    if ('missing' in log) {
      process.stderr.write(`harbor-replicator: ${log.missing}\n`);
      return EXIT.FAILED;
    }
    if (flags.json) process.stdout.write(`${JSON.stringify(log.lines)}\n`);
    else if (log.lines.length > 0) process.stdout.write(`${log.lines.join('\n')}\n`);
    else process.stderr.write(`no log for task ${taskId} yet: a run's lines are written when it ends or hands over\n`);
    return EXIT.OK;
  });
}

function taskRow(t: Task): string[] {
  return [
    String(t.id),
    t.operation,
    t.status,
    taskRef(t.source, t.digest),
    t.destination.repository ? taskRef(t.destination, t.digest) : '-',
    String(t.attempts),
    t.bytes ? formatBytes(t.bytes) : '0',
    t.statusText ?? '',
  ];
}
