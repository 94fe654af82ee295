import type { Counters, Log } from '../observability/telemetry.js';
import type { WorkerEvent } from './worker.js';

/** Logs and counts what a worker reports: a line per task start, end and retry. */
export function recordWorkerEvent(log: Log, counters: Counters, e: WorkerEvent): void {
  if (e.kind === 'task-start') {
    log.info('task running', { execution: e.task.executionId, task: e.task.id, source: `${e.task.source.repository}:${e.task.source.tags.join(',')}`, attempt: e.task.attempts });
  } else if (e.kind === 'task-end') {
    if (e.status !== 'Pending') counters.taskFinished(e.status, e.bytes);
    log.info('task ended', { execution: e.task.executionId, task: e.task.id, status: e.status, bytes: e.bytes, ...(e.text ? { text: e.text } : {}) });
  } else if (e.kind === 'task-retry') {
    log.warn('task will be retried', { execution: e.task.executionId, task: e.task.id, delayMs: e.delayMs, reason: e.reason });
  }
}
