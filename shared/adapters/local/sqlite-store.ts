import type { Database, Value } from 'better-sqlite3';
import { ReplicatorError } from '../../errors.js';
import {
  countField,
  emptyCounts,
  TASK_STATUSES,
  type DriftReport,
  type Execution,
  type ExecutionStatus,
  referrerTargetKey,
  type NewTask,
  type RecordedReferrer,
  type ReferrerTarget,
  type Task,
  type TaskCounts,
  type TaskError,
  type TaskStatus,
  type Trigger,
} from '../../executions/model.js';
import { alreadyApplied, applyMove, countDelta, newTasks, settleDecision, taskMove, type TaskMove } from '../../executions/transitions.js';
import type { ExecutionQuery, MoveOutcome, Page, TaskStore } from '../../executions/ports.js';
import { decodeCursor, encodeCursor, InvalidCursorError } from '../listing-cursor.js';
import type { TaskLogSegment } from '../../executions/task-log.js';
import { SqliteTaskLogs } from './sqlite-task-log.js';

/**
 * The TaskStore on the embedded SQLite file (schema in `sqlite-database.ts`), for the one
 * process that owns the data dir. Every task move is one transaction: read the task, check the
 * move's precondition (or find it already applied), write the state `applyMove` returns and the
 * counter deltas `countDelta` gives, commit. The counters therefore never drift from the tasks;
 * a close still decides from a recount of the tasks (one GROUP BY on an index), as on DynamoDB.
 * This class maps moves to SQL and decides nothing itself.
 *
 * better-sqlite3 is synchronous: each call runs to its commit without yielding, so two calls of
 * this process never interleave inside a transaction. The methods stay async for the port.
 */
export class SqliteTaskStore implements TaskStore {
  private readonly now: () => number;
  private readonly onFinished: ((execution: Execution) => void) | undefined;
  private readonly q: ReturnType<typeof statements>;
  private readonly logs: SqliteTaskLogs;

  constructor(
    private readonly db: Database,
    opts: {
      now?: () => number;
      /** Called once per execution, by the call that closed it, after its commit (metrics, logs). */
      onFinished?: (execution: Execution) => void;
    } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.onFinished = opts.onFinished;
    this.q = statements(db);
    this.logs = new SqliteTaskLogs(db);
  }

  // ---- executions ---------------------------------------------------------------------------

  async createExecution(init: { rule: string; trigger: Trigger }): Promise<Execution> {
    return toExecution(this.q.insertExecution.get(init.rule, init.trigger, 'InProgress', null, 0, this.iso(), null)!);
  }

  async createFinishedExecution(init: { rule: string; trigger: Trigger; status: ExecutionStatus; statusText: string }): Promise<Execution> {
    const start = this.iso();
    return toExecution(this.q.insertExecution.get(init.rule, init.trigger, init.status, init.statusText, 1, start, start)!);
  }

  async getExecution(id: string): Promise<Execution | undefined> {
    const row = this.executionRow(id);
    return row && toExecution(row);
  }

  async listExecutions(query: ExecutionQuery): Promise<Page<Execution>> {
    const rule = query.rule ?? null;
    const status = query.status ?? null;
    const trigger = query.trigger ?? null;
    const limit = pageSize(query.limit, 20);
    // Newest first: (start, id) descending; the cursor is the last item's position in this listing
    // (and names the listing, so a cursor of another one is refused). No cursor: from above any ISO time.
    let after: [string, number] = ['\u{10ffff}', Number.MAX_SAFE_INTEGER];
    if (query.cursor) {
      const c = decodeCursor(query.cursor) as Partial<ExecutionCursor> | null;
      if (c?.k !== 'executions' || c.rule !== rule || c.status !== status || (c.trigger ?? null) !== trigger || typeof c.start !== 'string' || !Number.isSafeInteger(c.id)) {
        throw new InvalidCursorError();
      }
      after = [c.start, c.id!];
    }
    const t = [trigger, trigger] as const; // `(? IS NULL OR trigger = ?)`: a filter on the rows the index walks
    const rows =
      rule !== null && status !== null
        ? this.q.executionsByRuleStatus.all(rule, status, ...t, ...after, limit + 1)
        : rule !== null
          ? this.q.executionsByRule.all(rule, ...t, ...after, limit + 1)
          : status !== null
            ? this.q.executionsByStatus.all(status, ...t, ...after, limit + 1)
            : this.q.executionsAll.all(...t, ...after, limit + 1);
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    const cursor: ExecutionCursor | undefined = rows.length > limit && last ? { k: 'executions', rule, status, ...(trigger !== null ? { trigger } : {}), start: last.start_time, id: last.id } : undefined;
    return { items: items.map(toExecution), cursor: cursor && encodeCursor(cursor) };
  }

  async activeExecutions(rule?: string): Promise<Execution[]> {
    const rows = rule === undefined ? this.q.activeAll.all() : this.q.activeByRule.all(rule);
    return rows.map(toExecution);
  }

  // ---- planning -----------------------------------------------------------------------------

  async addTasks(executionId: string, firstId: number, tasks: NewTask[]): Promise<Task[]> {
    const created = newTasks(executionId, firstId, tasks, this.now());
    return this.db.transaction(() => {
      const eid = this.existing(executionId);
      const delta = emptyCounts();
      const out: Task[] = [];
      for (const t of created) {
        // An id recorded before (a second planner racing a resumed one) keeps its task as it is:
        // a task moves only by moves, never by being written again.
        const accessories = t.accessories ? JSON.stringify(t.accessories) : null;
        if (this.q.insertTask.run(eid, t.id, t.operation, JSON.stringify(t.source), JSON.stringify(t.destination), accessories, ...taskState(t)).changes === 0) {
          out.push(toTask(this.q.task.get(eid, t.id)!));
          continue;
        }
        delta.total += 1;
        delta[countField(t.status)] += 1;
        out.push(t);
      }
      this.addCounts(eid, delta);
      return out;
    }).immediate();
  }

  async leasePlanning(executionId: string, token: string, until: number): Promise<boolean> {
    const eid = rowId(executionId);
    return eid !== undefined && this.q.leasePlanning.run(until, token, eid, this.now(), token).changes === 1;
  }

  async finishPlanning(executionId: string, total: number, opts: { error?: string | undefined } = {}): Promise<Execution | undefined> {
    const eid = rowId(executionId);
    if (eid === undefined) return undefined;
    const settled = this.db.transaction(() => {
      // The first finish wins: a planning delivered twice does not overwrite its outcome.
      this.q.finishPlanning.run(total, opts.error ?? null, opts.error ?? null, eid);
      return this.settle(eid);
    }).immediate();
    return this.closed(settled);
  }

  async releasePlanning(executionId: string, opts: { countReplan: boolean }): Promise<number> {
    const eid = this.existing(executionId);
    const row = this.q.releasePlanning.get(opts.countReplan ? 1 : 0, eid);
    if (!row) throw unknownExecution(executionId);
    return row.replans;
  }

  // ---- tasks --------------------------------------------------------------------------------

  async getTask(executionId: string, taskId: number): Promise<Task | undefined> {
    const eid = rowId(executionId);
    const row = eid === undefined ? undefined : this.q.task.get(eid, taskId);
    return row && toTask(row);
  }

  async listTasks(executionId: string, query: { status?: TaskStatus | undefined; limit?: number; cursor?: string | undefined }): Promise<Page<Task>> {
    const status = query.status ?? null;
    const limit = pageSize(query.limit, 100);
    let after = 0;
    if (query.cursor) {
      const c = decodeCursor(query.cursor) as Partial<TaskCursor> | null;
      if (c?.k !== 'tasks' || c.execution !== executionId || c.status !== status || !Number.isSafeInteger(c.id)) throw new InvalidCursorError();
      after = c.id!;
    }
    const eid = rowId(executionId);
    if (eid === undefined) return { items: [] };
    const rows = status === null ? this.q.tasks.all(eid, after, limit + 1) : this.q.tasksByStatus.all(eid, status, after, limit + 1);
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    const cursor: TaskCursor | undefined = rows.length > limit && last ? { k: 'tasks', execution: executionId, status, id: last.id } : undefined;
    return { items: items.map(toTask), cursor: cursor && encodeCursor(cursor) };
  }

  async applyMove(executionId: string, taskId: number, move: TaskMove): Promise<MoveOutcome> {
    const eid = rowId(executionId);
    if (eid === undefined) return { applied: false, task: undefined };
    return this.db.transaction(() => this.move(eid, taskId, move)).immediate();
  }

  async heartbeat(executionId: string, taskId: number, token: string, leaseUntil: number): Promise<boolean> {
    const eid = rowId(executionId);
    return eid !== undefined && this.q.heartbeat.run(leaseUntil, eid, taskId, token).changes === 1;
  }

  // ---- settling -----------------------------------------------------------------------------

  async recount(executionId: string): Promise<{ counts: TaskCounts; corrected: boolean }> {
    const eid = rowId(executionId);
    if (eid === undefined) return { counts: emptyCounts(), corrected: false };
    return this.db.transaction(() => {
      const row = this.q.execution.get(eid);
      const truth = this.countTasks(eid);
      if (!row) return { counts: truth, corrected: false };
      const bytes = this.q.sumBytes.get(eid) ?? 0;
      const corrected = (Object.keys(truth) as Array<keyof TaskCounts>).some((k) => truth[k] !== row[k]) || bytes !== row.bytes;
      if (corrected) {
        this.q.setCounts.run(...countValues(truth), eid);
        this.q.setBytes.run(bytes, eid);
      }
      return { counts: truth, corrected };
    }).immediate();
  }

  async settleExecution(executionId: string): Promise<Execution | undefined> {
    const eid = rowId(executionId);
    if (eid === undefined) return undefined;
    return this.closed(this.db.transaction(() => this.settle(eid)).immediate());
  }

  async requestStop(executionId: string): Promise<Execution | undefined> {
    const eid = rowId(executionId);
    if (eid === undefined) return undefined;
    const settled = this.db.transaction(() => {
      if (this.q.requestStop.run(eid).changes === 0) return undefined;
      // Tasks not started become Stopped, each by its move; a task that becomes Pending later (a
      // retry) sees the request when a worker takes it.
      for (const status of ['Pending', 'Scheduled'] as const) {
        for (const id of this.q.taskIdsByStatus.all(eid, status)) this.move(eid, id, taskMove({ kind: 'stopPending', now: this.now() }));
      }
      return this.settle(eid);
    }).immediate();
    return this.closed(settled);
  }

  // ---- task logs ----------------------------------------------------------------------------

  async appendTaskLog(executionId: string, taskId: number, segment: TaskLogSegment): Promise<void> {
    this.logs.append(this.existing(executionId), taskId, segment);
  }

  async taskLog(executionId: string, taskId: number): Promise<string[]> {
    const eid = rowId(executionId);
    return eid === undefined ? [] : this.logs.lines(eid, taskId);
  }

  // ---- drift --------------------------------------------------------------------------------

  async recordDrift(report: DriftReport): Promise<void> {
    this.q.recordDrift.run(report.rule, report.takenAt, JSON.stringify(report));
  }

  async lastDrift(rule: string): Promise<DriftReport | undefined> {
    const value = this.q.lastDrift.get(rule);
    return value === undefined ? undefined : (JSON.parse(value) as DriftReport);
  }

  // ---- referrers ----------------------------------------------------------------------------

  async recordReferrers(target: ReferrerTarget, referrers: readonly RecordedReferrer[]): Promise<void> {
    const key = referrerTargetKey(target);
    this.db.transaction(() => {
      for (const r of referrers) this.q.recordReferrer.run(key, r.digest, JSON.stringify(recorded(r)));
    }).immediate();
  }

  async recordedReferrers(target: ReferrerTarget, limit = 10_000): Promise<RecordedReferrer[]> {
    return this.q.recordedReferrers.all(referrerTargetKey(target), limit).map((v) => recorded(JSON.parse(v) as RecordedReferrer));
  }

  async forgetReferrers(target: ReferrerTarget, digests: readonly string[]): Promise<void> {
    const key = referrerTargetKey(target);
    this.db.transaction(() => {
      for (const d of digests) this.q.forgetReferrer.run(key, d);
    }).immediate();
  }

  // ---- inside transactions ------------------------------------------------------------------

  /** One move: precondition, else a repeated delivery, else refused; the task and its counters written together. */
  private move(eid: number, taskId: number, move: TaskMove): MoveOutcome {
    const row = this.q.task.get(eid, taskId);
    if (!row) return { applied: false, task: undefined };
    const before = toTask(row);
    const after = applyMove(before, move);
    if (!after) {
      // As on DynamoDB: the precondition first; only a move that does not apply may be one applied before.
      if (alreadyApplied(before, move)) return { applied: true, repeated: true, from: move.to, task: before };
      return { applied: false, task: before };
    }
    // The task first, then its counters: a failure between them rolls both back.
    this.q.writeTask.run(...taskState(after), eid, taskId);
    const delta = countDelta(before.status, after.status);
    if (Object.keys(delta).length > 0) this.addCounts(eid, { ...emptyCounts(), ...delta });
    // The execution's bytes move with the task's (a success writes them), in the same transaction.
    if (after.bytes !== before.bytes) this.q.addBytes.run(after.bytes - before.bytes, eid);
    return { applied: true, repeated: false, from: before.status, task: after };
  }

  private addCounts(eid: number, delta: TaskCounts): void {
    if (this.q.addCounts.run(...countValues(delta), eid).changes !== 1) throw unknownExecution(String(eid));
  }

  /** The tasks counted per status (the covering index `tasks_by_status`). */
  private countTasks(eid: number): TaskCounts {
    const truth = emptyCounts();
    for (const { status, n } of this.q.countByStatus.all(eid)) {
      if (!(TASK_STATUSES as readonly string[]).includes(status)) continue;
      truth[countField(status as TaskStatus)] += n;
      truth.total += n;
    }
    return truth;
  }

  /** Closes the execution when `settleDecision`, given a recount of its tasks, says it is final. */
  private settle(eid: number): { execution: Execution; closed: boolean } | undefined {
    const row = this.q.execution.get(eid);
    if (!row) return undefined;
    if (row.status !== 'InProgress') return { execution: toExecution(row), closed: false };
    const truth = this.countTasks(eid);
    const decision = settleDecision(
      { status: row.status, planned: row.planned === 1, planError: row.plan_error ?? undefined, stopRequested: row.stop_requested === 1 },
      truth,
    );
    if (!decision.close) return { execution: { ...toExecution(row), counts: truth }, closed: false };
    // Closed with the tasks' bytes, like its counts (the row's are a progress view).
    this.q.setBytes.run(this.q.sumBytes.get(eid) ?? 0, eid);
    // Conditioned on InProgress like DynamoDB's close, though inside this transaction it still is.
    const closed = this.q.close.get(decision.status, this.iso(), decision.statusText ?? null, ...countValues(truth), eid);
    return closed ? { execution: toExecution(closed), closed: true } : { execution: toExecution(this.q.execution.get(eid)!), closed: false };
  }

  /** After the commit: tells `onFinished` about a close. */
  private closed(settled: { execution: Execution; closed: boolean } | undefined): Execution | undefined {
    if (settled?.closed) this.onFinished?.(settled.execution);
    return settled?.execution;
  }

  private executionRow(id: string): ExecutionRow | undefined {
    const eid = rowId(id);
    return eid === undefined ? undefined : this.q.execution.get(eid);
  }

  /** The row id of an execution that exists; EXECUTION_UNKNOWN otherwise. */
  private existing(id: string): number {
    const eid = rowId(id);
    if (eid === undefined || !this.q.execution.get(eid)) throw unknownExecution(id);
    return eid;
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

// ---- rows -----------------------------------------------------------------------------------

interface ExecutionRow extends TaskCounts {
  id: number;
  rule: string;
  trigger: Trigger;
  status: ExecutionStatus;
  status_text: string | null;
  planned: number;
  plan_error: string | null;
  plan_lease: number | null;
  replans: number;
  stop_requested: number;
  start_time: string;
  end_time: string | null;
  bytes: number;
}

interface TaskRow {
  execution_id: number;
  id: number;
  operation: Task['operation'];
  source: string;
  destination: string;
  digest: string | null;
  status: TaskStatus;
  status_text: string | null;
  error: string | null;
  attempts: number;
  revision: number;
  requeues: number;
  bytes: number;
  start_time: string | null;
  end_time: string | null;
  lease_until: number | null;
  lease_token: string | null;
  queued_at: number | null;
  last_move: string | null;
  checkpoint: string | null;
  referrers: string | null;
  accessories: string | null;
}

interface ExecutionCursor {
  k: 'executions';
  rule: string | null;
  status: string | null;
  trigger?: string | null;
  start: string;
  id: number;
}

interface TaskCursor {
  k: 'tasks';
  execution: string;
  status: string | null;
  id: number;
}

const COUNTS = ['total', 'pending', 'scheduled', 'running', 'succeed', 'failed', 'stopped'] as const;
/** The task columns a move writes, in `taskState`'s order. */
const STATE = ['digest', 'status', 'status_text', 'error', 'attempts', 'revision', 'requeues', 'bytes', 'start_time', 'end_time', 'lease_until', 'lease_token', 'queued_at', 'last_move', 'checkpoint', 'referrers'] as const;

/**
 * Every statement, prepared once. `INDEXED BY` names the index a query is meant to use: SQLite
 * refuses to prepare the statement if that index cannot serve it, so a listing, the active
 * executions or a recount can never silently become a table scan (checked when the store is made).
 */
function statements(db: Database) {
  const execution = <R = ExecutionRow>(sql: string) => db.prepare<R>(sql);
  const listing = (where: string, index: string) =>
    execution(`SELECT * FROM executions INDEXED BY ${index} WHERE ${where}(? IS NULL OR trigger = ?) AND (start_time, id) < (?, ?) ORDER BY start_time DESC, id DESC LIMIT ?`);
  return {
    insertExecution: execution(
      `INSERT INTO executions (rule, trigger, status, status_text, planned, start_time, end_time) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    execution: execution('SELECT * FROM executions WHERE id = ?'),
    executionsAll: listing('', 'executions_by_start'),
    executionsByRule: listing('rule = ? AND ', 'executions_by_rule'),
    executionsByStatus: listing('status = ? AND ', 'executions_by_status'),
    executionsByRuleStatus: listing('rule = ? AND status = ? AND ', 'executions_by_rule'),
    activeAll: execution(`SELECT * FROM executions INDEXED BY executions_active WHERE status = 'InProgress' ORDER BY rule, start_time, id`),
    activeByRule: execution(`SELECT * FROM executions INDEXED BY executions_active WHERE status = 'InProgress' AND rule = ? ORDER BY start_time, id`),
    leasePlanning: db.prepare(
      'UPDATE executions SET plan_lease = ?, plan_token = ? WHERE id = ? AND planned = 0 AND (plan_lease IS NULL OR plan_lease < ? OR plan_token = ?)',
    ),
    finishPlanning: db.prepare(
      'UPDATE executions SET planned = 1, planned_total = ?, status_text = coalesce(?, status_text), plan_error = ?, plan_lease = NULL, plan_token = NULL WHERE id = ? AND planned = 0',
    ),
    releasePlanning: db.prepare<{ replans: number }>('UPDATE executions SET replans = replans + ?, plan_lease = NULL, plan_token = NULL WHERE id = ? RETURNING replans'),
    requestStop: db.prepare('UPDATE executions SET stop_requested = 1 WHERE id = ?'),
    addCounts: db.prepare(`UPDATE executions SET ${COUNTS.map((c) => `${c} = ${c} + ?`).join(', ')} WHERE id = ?`),
    setCounts: db.prepare(`UPDATE executions SET ${COUNTS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`),
    close: execution(
      `UPDATE executions SET status = ?, end_time = ?, status_text = coalesce(?, status_text), ${COUNTS.map((c) => `${c} = ?`).join(', ')} WHERE id = ? AND status = 'InProgress' RETURNING *`,
    ),
    insertTask: db.prepare(
      `INSERT INTO tasks (execution_id, id, operation, source, destination, accessories, ${STATE.join(', ')}) VALUES (?, ?, ?, ?, ?, ?, ${STATE.map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`,
    ),
    writeTask: db.prepare(`UPDATE tasks SET ${STATE.map((c) => `${c} = ?`).join(', ')} WHERE execution_id = ? AND id = ?`),
    task: db.prepare<TaskRow>('SELECT * FROM tasks WHERE execution_id = ? AND id = ?'),
    tasks: db.prepare<TaskRow>('SELECT * FROM tasks WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?'),
    tasksByStatus: db.prepare<TaskRow>('SELECT * FROM tasks INDEXED BY tasks_by_status WHERE execution_id = ? AND status = ? AND id > ? ORDER BY id LIMIT ?'),
    taskIdsByStatus: db.prepare<number>('SELECT id FROM tasks INDEXED BY tasks_by_status WHERE execution_id = ? AND status = ? ORDER BY id').pluck(),
    countByStatus: db.prepare<{ status: string; n: number }>('SELECT status, count(*) AS n FROM tasks INDEXED BY tasks_by_status WHERE execution_id = ? GROUP BY status'),
    addBytes: db.prepare('UPDATE executions SET bytes = bytes + ? WHERE id = ?'),
    setBytes: db.prepare('UPDATE executions SET bytes = ? WHERE id = ?'),
    sumBytes: db.prepare<number>('SELECT coalesce(sum(bytes), 0) FROM tasks WHERE execution_id = ?').pluck(),
    heartbeat: db.prepare(`UPDATE tasks SET lease_until = ? WHERE execution_id = ? AND id = ? AND status = 'Running' AND lease_token = ?`),
    // A report taken earlier than the one kept (two reconciles finishing out of order) does not replace it.
    recordDrift: db.prepare(
      'INSERT INTO drift (rule, taken_at, value) VALUES (?, ?, ?) ON CONFLICT (rule) DO UPDATE SET taken_at = excluded.taken_at, value = excluded.value WHERE excluded.taken_at >= drift.taken_at',
    ),
    lastDrift: db.prepare<string>('SELECT value FROM drift WHERE rule = ?').pluck(),
    recordReferrer: db.prepare('INSERT INTO referrers (target, digest, value) VALUES (?, ?, ?) ON CONFLICT (target, digest) DO UPDATE SET value = excluded.value'),
    recordedReferrers: db.prepare<string>('SELECT value FROM referrers WHERE target = ? ORDER BY digest LIMIT ?').pluck(),
    forgetReferrer: db.prepare('DELETE FROM referrers WHERE target = ? AND digest = ?'),
  };
}

/** Execution ids are the table's integer keys, given out as decimal strings (as the DynamoDB store's sequence). */
function rowId(id: string): number | undefined {
  return /^[1-9][0-9]{0,14}$/.test(id) ? Number(id) : undefined;
}

function unknownExecution(id: string): ReplicatorError {
  return new ReplicatorError('EXECUTION_UNKNOWN', `no execution ${id}`);
}

function pageSize(limit: number | undefined, fallback: number): number {
  return Math.max(1, Math.floor(limit ?? fallback));
}

function countValues(c: TaskCounts): number[] {
  return COUNTS.map((k) => c[k]);
}

/** The columns of STATE for a task. */
function taskState(t: Task): Value[] {
  return [
    t.digest ?? null,
    t.status,
    t.statusText ?? null,
    t.error ? JSON.stringify({ code: t.error.code, message: t.error.message }) : null,
    t.attempts,
    t.revision,
    t.requeues,
    t.bytes,
    t.startTime ?? null,
    t.endTime ?? null,
    t.leaseUntil ?? null,
    t.leaseToken ?? null,
    t.queuedAt ?? null,
    t.lastMove ?? null,
    t.checkpoint?.length ? JSON.stringify(t.checkpoint) : null,
    t.referrers ? JSON.stringify({ ...t.referrers, ...(t.referrerDigests?.length ? { digests: t.referrerDigests } : {}) }) : null,
  ];
}

/** A recorded referrer's fields, nothing else (what is written and read back). */
function recorded(r: RecordedReferrer): RecordedReferrer {
  return { digest: r.digest, subject: r.subject, depth: r.depth, ...(r.tag !== undefined ? { tag: r.tag } : {}) };
}

/** A task as the DynamoDB store reads one (same fields, same order, same absences). */
function toTask(r: TaskRow): Task {
  const error = r.error === null ? undefined : (JSON.parse(r.error) as TaskError);
  return {
    executionId: String(r.execution_id),
    id: r.id,
    operation: r.operation,
    source: JSON.parse(r.source) as Task['source'],
    destination: JSON.parse(r.destination) as Task['destination'],
    digest: r.digest ?? undefined,
    status: r.status,
    statusText: r.status_text ?? undefined,
    ...(error ? { error: { code: error.code, message: error.message } } : {}),
    attempts: r.attempts,
    revision: r.revision,
    requeues: r.requeues,
    bytes: r.bytes,
    startTime: r.start_time ?? undefined,
    endTime: r.end_time ?? undefined,
    leaseUntil: r.lease_until ?? undefined,
    leaseToken: r.lease_token ?? undefined,
    queuedAt: r.queued_at ?? undefined,
    lastMove: r.last_move ?? undefined,
    ...(r.checkpoint !== null ? { checkpoint: JSON.parse(r.checkpoint) as Task['checkpoint'] } : {}),
    ...referrersOf(r.referrers),
    ...(r.accessories !== null ? { accessories: JSON.parse(r.accessories) as Task['accessories'] } : {}),
  };
}

/** The `referrers` column: the counts and, when there are some, the digests the task pushed. */
function referrersOf(text: string | null): Pick<Task, 'referrers' | 'referrerDigests'> {
  if (text === null) return {};
  const v = JSON.parse(text) as { copied: number; in_sync: number; failed: number; digests?: string[] };
  return { referrers: { copied: v.copied, in_sync: v.in_sync, failed: v.failed }, ...(v.digests?.length ? { referrerDigests: v.digests } : {}) };
}

/** An execution as the DynamoDB store reads one. */
function toExecution(r: ExecutionRow): Execution {
  return {
    id: String(r.id),
    rule: r.rule,
    trigger: r.trigger,
    status: r.status,
    statusText: r.status_text ?? undefined,
    counts: { total: r.total, pending: r.pending, scheduled: r.scheduled, running: r.running, succeed: r.succeed, failed: r.failed, stopped: r.stopped },
    bytes: r.bytes,
    planned: r.planned === 1,
    stopRequested: r.stop_requested === 1,
    startTime: r.start_time,
    endTime: r.end_time ?? undefined,
    planLeaseUntil: r.plan_lease ?? undefined,
    replans: r.replans,
  };
}
