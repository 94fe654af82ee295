import { countField, FINAL_TASK, type Execution, type NewTask, type Task, type TaskCounts, type TaskStatus, type Trigger } from '../executions/model.js';
import type { ExecutionQuery, Page, TaskStore, TransitionPatch } from '../ports.js';
import type { DynamoDBTaskStore } from './dynamodb-store.js';

/**
 * A TaskStore for a process that owns its data (the embedded default: one process per data
 * dir). Tasks this process created are moved in memory while they run, and written when they
 * end, 25 at a time; a task that is Running here is Pending on disk, so after a crash it is
 * simply run again. Transitions keep their conditional semantics against the in-memory state,
 * which only this process changes. Reads flush first. Everything else goes to the inner store.
 *
 * Why: dynalite costs a few milliseconds of this process's CPU per request; two conditional
 * updates per task made the store, not the registries, the bottleneck of a 50-tag run.
 */
export class WriteBehindTaskStore implements TaskStore {
  /** Tasks of this process not yet final, with the status they have on disk. */
  private readonly open = new Map<string, { task: Task; stored: TaskStatus }>();
  private finals: Array<{ task: Task; stored: TaskStatus }> = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: DynamoDBTaskStore,
    private readonly flushMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  private key(executionId: string, taskId: number): string {
    return `${executionId}#${taskId}`;
  }

  /** Writes the tasks that ended, and their counter moves. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.finals;
    this.finals = [];
    const write = this.flushing.then(async () => {
      if (batch.length === 0) return;
      await this.inner.putTasks(batch.map((b) => b.task));
      for (const { task, stored } of batch) {
        await this.inner.addCounts(task.executionId, task.id, { [countField(stored)]: -1, [countField(task.status)]: 1 });
      }
      await this.inner.flushCounters();
    });
    this.flushing = write.catch(() => undefined);
    await write;
  }

  private schedule(): void {
    if (this.finals.length >= 25) void this.flush().catch(() => {});
    else this.timer ??= setTimeout(() => void this.flush().catch(() => {}), this.flushMs);
  }

  async addTasks(executionId: string, firstId: number, tasks: NewTask[]): Promise<Task[]> {
    const created = await this.inner.addTasks(executionId, firstId, tasks);
    for (const t of created) if (!FINAL_TASK.has(t.status)) this.open.set(this.key(executionId, t.id), { task: { ...t }, stored: t.status });
    return created;
  }

  async transitionTask(
    executionId: string,
    taskId: number,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: TransitionPatch = {},
  ): Promise<Task | undefined> {
    const entry = this.open.get(this.key(executionId, taskId));
    if (!entry) {
      await this.flush();
      return this.inner.transitionTask(executionId, taskId, from, to, patch);
    }
    const t = entry.task;
    if (!from.includes(t.status)) return undefined; // one process: no lease to take over
    const before = { ...t };
    const now = new Date(this.now()).toISOString();
    t.status = to;
    if (patch.countAttempt) t.attempts += 1;
    if (patch.statusText !== undefined) t.statusText = patch.statusText;
    if (patch.error !== undefined) t.error = patch.error;
    else if (to === 'Success') delete t.error;
    if (patch.bytes !== undefined) t.bytes = patch.bytes;
    if (patch.checkpoint !== undefined) t.checkpoint = patch.checkpoint;
    if (to === 'Running') t.startTime = now;
    if (FINAL_TASK.has(to)) {
      t.endTime = now;
      delete t.checkpoint;
      this.open.delete(this.key(executionId, taskId));
      this.finals.push(entry);
      this.schedule();
    }
    return before;
  }

  async renewLease(): Promise<void> {
    // In memory, a running task cannot be taken over.
  }

  async settleExecution(executionId: string, opts?: { force?: boolean }): Promise<Execution | undefined> {
    await this.flush();
    const e = await this.inner.settleExecution(executionId, opts);
    return e && this.overlay(e);
  }

  async createExecution(init: { rule: string; trigger: Trigger }): Promise<Execution> {
    return this.inner.createExecution(init);
  }

  async createFinishedExecution(init: Parameters<TaskStore['createFinishedExecution']>[0]): Promise<Execution> {
    return this.inner.createFinishedExecution(init);
  }

  /** Counts as they are, with the moves held in memory (Running tasks are Pending on disk). */
  private overlay(e: Execution): Execution {
    const counts = { ...e.counts };
    for (const { task, stored } of this.open.values()) {
      if (task.executionId !== e.id || task.status === stored) continue;
      counts[countField(stored)] -= 1;
      counts[countField(task.status)] += 1;
    }
    return { ...e, counts };
  }

  async getExecution(id: string): Promise<Execution | undefined> {
    await this.flush();
    const e = await this.inner.getExecution(id);
    return e && this.overlay(e);
  }

  async listExecutions(query: ExecutionQuery): Promise<Page<Execution>> {
    await this.flush();
    const page = await this.inner.listExecutions(query);
    return { ...page, items: page.items.map((e) => this.overlay(e)) };
  }

  async activeExecutions(rule?: string): Promise<Execution[]> {
    await this.flush();
    return (await this.inner.activeExecutions(rule)).map((e) => this.overlay(e));
  }

  async finishPlanning(executionId: string, total: number, error?: string): Promise<void> {
    await this.flush();
    return this.inner.finishPlanning(executionId, total, error);
  }

  async getTask(executionId: string, taskId: number): Promise<Task | undefined> {
    const entry = this.open.get(this.key(executionId, taskId));
    if (entry) return { ...entry.task };
    await this.flush();
    return this.inner.getTask(executionId, taskId);
  }

  async listTasks(executionId: string, query: Parameters<TaskStore['listTasks']>[1]): Promise<Page<Task>> {
    await this.flush();
    const page = await this.inner.listTasks(executionId, query);
    const live = (t: Task) => this.open.get(this.key(executionId, t.id))?.task;
    let items = page.items.map((t) => ({ ...(live(t) ?? t) }));
    if (query.status) {
      // On disk a running task is still Pending: show it where it is now.
      items = items.filter((t) => t.status === query.status);
      if (!query.cursor) {
        const moved = [...this.open.values()].filter((o) => o.task.executionId === executionId && o.task.status === query.status && o.stored !== query.status);
        items = [...moved.map((o) => ({ ...o.task })), ...items];
      }
    }
    return { ...page, items };
  }

  async reconcileCounts(executionId: string): Promise<TaskCounts> {
    await this.flush();
    return this.inner.reconcileCounts(executionId);
  }

  async requestStop(executionId: string): Promise<void> {
    // Pending tasks held here stop at once; the inner store stops what is on disk.
    for (const [key, entry] of this.open) {
      if (entry.task.executionId === executionId && (entry.task.status === 'Pending' || entry.task.status === 'Scheduled')) {
        entry.task.status = 'Stopped';
        entry.task.statusText = 'stopped';
        entry.task.endTime = new Date(this.now()).toISOString();
        this.open.delete(key);
        this.finals.push(entry);
      }
    }
    await this.flush();
    await this.inner.requestStop(executionId);
  }
}
