import type { Database } from 'better-sqlite3';
import { boundLog, segmentLines, segmentRecord, shadowedRuns, type TaskLogSegment } from '../../executions/task-log.js';

/**
 * Task logs in the embedded SQLite file (`task_logs`, schema version 4): one row per run of a
 * task, inserted once (a repeated write of the same run is ignored), in the same transaction as
 * the deletion of the rows newer runs have made invisible. Read back in run order, bounded.
 * A task's rows go with it (foreign key, ON DELETE CASCADE): the embedded store keeps history
 * until the operator removes it, and a log never outlives its task.
 */
export class SqliteTaskLogs {
  private readonly q: ReturnType<typeof statements>;

  constructor(private readonly db: Database) {
    this.q = statements(db);
  }

  /** Adds a run's lines to the log of task `taskId` of execution row `eid`. */
  append(eid: number, taskId: number, segment: TaskLogSegment): void {
    const r = segmentRecord(segment.lines);
    this.db
      .transaction(() => {
        if (this.q.insert.run(eid, taskId, segment.run, r.text, r.lines, r.bytes).changes === 0) return;
        for (const run of shadowedRuns(this.q.sizes.all(eid, taskId))) this.q.remove.run(eid, taskId, run);
      })
      .immediate();
  }

  /** The log of a task, oldest line first, within the bounds. */
  lines(eid: number, taskId: number): string[] {
    return boundLog(this.q.texts.all(eid, taskId).flatMap(segmentLines));
  }
}

function statements(db: Database) {
  return {
    insert: db.prepare('INSERT INTO task_logs (execution_id, task_id, run, lines, line_count, bytes) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
    sizes: db.prepare<{ run: number; lines: number; bytes: number }>('SELECT run, line_count AS lines, bytes FROM task_logs WHERE execution_id = ? AND task_id = ?'),
    remove: db.prepare('DELETE FROM task_logs WHERE execution_id = ? AND task_id = ? AND run = ?'),
    texts: db.prepare<string>('SELECT lines FROM task_logs WHERE execution_id = ? AND task_id = ? ORDER BY run').pluck(),
  };
}
