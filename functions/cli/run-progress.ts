import type cliProgress from 'cli-progress';
import type { Execution, Task } from '../../shared/executions/model.js';
import type { RunEvent } from '../../shared/executions/local-runner.js';
import { formatBytes } from '../../shared/util/units.js';

/** `registry/repository:tags` of a task side, for humans. */
export function taskRef(side: Task['source'], digest?: string): string {
  const tags = side.tags.length ? `:${side.tags.join(',')}` : digest ? `@${digest.slice(0, 19)}` : '';
  return `${side.registry}/${side.repository}${tags}`;
}

/**
 * Renders a run: a bar (tasks done/total, bytes, tags in flight) on a TTY, one line per finished
 * task otherwise. Everything goes to stderr; stdout keeps the summary (or JSON).
 */
export function createRunProgress(opts: { out: NodeJS.WriteStream; tty: boolean; bars?: typeof cliProgress | undefined; quiet: boolean }) {
  let total = 0;
  let planned = false;
  let done = 0;
  let bytes = 0;
  const inFlight = new Map<string, string>();
  let multi: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const line = (text: string) => {
    if (opts.quiet) return;
    if (multi) multi.log(`${text}\n`);
    else opts.out.write(`${text}\n`);
  };
  const redraw = () => {
    if (!bar) return;
    const names = [...inFlight.values()].slice(0, 3).join(', ') + (inFlight.size > 3 ? ` +${inFlight.size - 3}` : '');
    bar.setTotal(Math.max(total, 1));
    bar.update(done, { totalLabel: planned ? String(total) : `${total}+`, bytes: formatBytes(bytes), flight: names || '-' });
  };
  if (opts.tty && opts.bars && !opts.quiet) {
    multi = new opts.bars.MultiBar(
      { stream: opts.out, format: ' {bar} tasks {value}/{totalLabel} | {bytes} | {flight}', hideCursor: true, clearOnComplete: true, fps: 10, barsize: 25 },
      opts.bars.Presets.shades_classic,
    );
    bar = multi.create(1, 0, { totalLabel: '0', bytes: '0 B', flight: '-' });
  }
  const key = (t: Task) => `${t.executionId}/${t.id}`;

  return {
    onEvent(e: RunEvent): void {
      switch (e.kind) {
        case 'execution':
          if (e.execution.status === 'InProgress') line(`execution ${e.execution.id} of rule ${e.execution.rule} (${e.execution.trigger}) started`);
          break;
        case 'planned':
          total = e.summary.total;
          planned = e.done;
          if (e.done) {
            const deletions = e.summary.deletions ?? 0;
            const copies = `${e.summary.queued - deletions} to copy${deletions ? `, ${deletions} to delete (tags no longer at the source)` : ''}`;
            line(`planned ${e.summary.total} task(s): ${copies}, ${e.summary.inSync} already in sync, ${e.summary.errors} error(s), ${e.summary.excluded} left out by filters`);
          }
          redraw();
          break;
        case 'task-start':
          inFlight.set(key(e.task), taskRef(e.task.source, e.task.digest));
          redraw();
          break;
        case 'task-end':
          inFlight.delete(key(e.task));
          done += 1;
          if (!bar || e.status !== 'Success') {
            const what = `${taskRef(e.task.source, e.task.digest)} -> ${taskRef(e.task.destination, e.task.digest)}`;
            line(`[${done}/${planned ? total : `${total}+`}] ${e.status}${e.task.operation === 'deletion' ? ' deletion' : ''} ${what}${e.bytes ? ` (${formatBytes(e.bytes)})` : ''}${e.text ? `: ${e.text}` : ''}`);
          }
          redraw();
          break;
        case 'task-retry':
          inFlight.delete(key(e.task));
          line(`retry in ${(e.delayMs / 1000).toFixed(0)} s: ${taskRef(e.task.source, e.task.digest)}: ${e.reason}`);
          redraw();
          break;
        case 'copy':
          if (e.event.kind === 'blob-progress') {
            bytes += e.event.delta;
            redraw();
          }
          break;
      }
    },
    /** Bytes shown live come from blob progress; the summary uses the store's figures. */
    finish(): void {
      multi?.stop();
    },
  };
}

/** The one-line summary of a finished execution. */
export function executionSummary(e: Execution, seconds?: number): string {
  const c = e.counts;
  const took = seconds !== undefined ? ` in ${seconds.toFixed(1)} s` : '';
  const text = e.statusText ? ` (${e.statusText})` : '';
  return `execution ${e.id} ${e.status}${text}: ${c.total} task(s): ${c.succeed} succeed, ${c.failed} failed, ${c.stopped} stopped, ${c.pending + c.running + c.scheduled} in progress${took}`;
}
