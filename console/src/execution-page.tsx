import { useEffect, useRef, useState } from 'preact/hooks';
import { query, seg } from './api';
import { useSession } from './session-context';
import { CountsText, ErrorNote, Hidden, Pager, PageTitle, Progress, Status, StatusFilter } from './common';
import { formatBytes, formatDuration, formatRef, formatTime } from './format';
import { href, useAction, useLoad } from './hooks';
import { TASK_STATUSES, type Execution, type Page, type Task } from './types';

const PAGE_SIZE = 50;

/** One execution, live while it runs: its figures, Stop, its tasks (filtered by status), a task's log. */
export function ExecutionPage({ id, params }: { id: string; params: URLSearchParams }) {
  const { api, access } = useSession();
  const status = params.get('status') ?? '';
  const task = params.get('task') ?? undefined;
  const exec = useLoad(() => api.get<Execution>(`/executions/${seg(id)}`), [id], (e) => e.status === 'InProgress');
  const running = exec.data?.status === 'InProgress';
  const key = `${id}\n${status}`;
  const [paging, setPaging] = useState<{ key: string; cursor?: string; before: string[] }>({ key, before: [] });
  const cursor = paging.key === key ? paging.cursor : undefined;
  const before = paging.key === key ? paging.before : [];
  const tasks = useLoad(() => api.get<Page<Task>>(`/executions/${seg(id)}/tasks${query({ status, limit: PAGE_SIZE, cursor })}`), [id, status, cursor], () => running);
  // The execution just ended: its tasks once more, as they ended.
  const lastStatus = useRef(exec.data?.status);
  useEffect(() => {
    if (lastStatus.current === 'InProgress' && exec.data?.status !== 'InProgress') void tasks.reload();
    lastStatus.current = exec.data?.status;
  }, [exec.data?.status]);
  const stop = useAction(async () => {
    await api.post(`/executions/${seg(id)}/stop`);
    await exec.reload();
  });
  const link = (next: { status?: string; task?: string | undefined }) => href(['executions', id], { status, task, ...next });
  const e = exec.data;
  return (
    <>
      <p class="crumbs">
        <a href={href(['executions'])}>Executions</a>
      </p>
      <PageTitle title={`Execution ${id}`}>Execution {id}</PageTitle>
      <ErrorNote error={exec.error} what="The execution could not be read" />
      {exec.loading && <p role="status">Loading the execution…</p>}
      {e && (
        <section aria-labelledby="summary-title" class="summary">
          <h2 id="summary-title" class="visually-hidden">
            Summary
          </h2>
          <p class="headline">
            <Status status={e.status} />
            <span aria-live="polite" class="visually-hidden">
              Execution {e.status}
            </span>
            {running && <Progress counts={e.counts} label="Tasks done" />}
            {running && access === 'write' && !e.stopRequested && (
              <button type="button" class="danger" disabled={stop.busy} onClick={() => stop.run()}>
                Stop<Hidden> execution {id}</Hidden>
              </button>
            )}
            {running && e.stopRequested && <span>Stopping…</span>}
          </p>
          {e.statusText && <p>{e.statusText}</p>}
          <ErrorNote error={stop.error} what="The execution could not be stopped" />
          <dl class="figures">
            <div>
              <dt>Rule</dt>
              <dd>
                <a href={href(['executions'], { rule: e.rule })}>{e.rule}</a>
              </dd>
            </div>
            <div>
              <dt>Trigger</dt>
              <dd>{e.trigger}</dd>
            </div>
            <div>
              <dt>Tasks</dt>
              <dd>
                <CountsText counts={e.counts} />
                {!e.planned && ' (still planning)'}
              </dd>
            </div>
            <div>
              <dt>Started</dt>
              <dd>{formatTime(e.startTime)}</dd>
            </div>
            <div>
              <dt>Duration</dt>
              <dd>{formatDuration(e.startTime, e.endTime)}</dd>
            </div>
            {typeof e.bytes === 'number' && (
              <div>
                <dt>Bytes</dt>
                <dd>{formatBytes(e.bytes)}</dd>
              </div>
            )}
          </dl>
        </section>
      )}
      <section aria-labelledby="tasks-title">
        <h2 id="tasks-title">Tasks</h2>
        <form class="filters" onSubmit={(ev) => ev.preventDefault()} aria-label="Filter tasks">
          <StatusFilter value={status} statuses={TASK_STATUSES} onChange={(s) => (location.hash = link({ status: s, task: undefined }))} />
        </form>
        <ErrorNote error={tasks.error} what="The tasks could not be read" />
        {tasks.loading && <p role="status">Loading the tasks…</p>}
        {tasks.data && tasks.data.items.length === 0 && <p>No tasks{status ? ` with status ${status}` : ''}.</p>}
        {tasks.data && tasks.data.items.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption>Tasks of execution {id}: one per artifact</caption>
              <thead>
                <tr>
                  <th scope="col">Task</th>
                  <th scope="col">Source → destination</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Bytes</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Error</th>
                  <th scope="col">Log</th>
                </tr>
              </thead>
              <tbody>
                {tasks.data.items.map((t) => (
                  <tr key={t.id} class={String(t.id) === task ? 'selected' : undefined}>
                    <th scope="row">{t.id}</th>
                    <td>
                      {t.operation === 'deletion' && 'Delete '}
                      {formatRef(t.source.repository, t.source.tags)} → {formatRef(t.destination.repository, t.destination.tags)}
                    </td>
                    <td>
                      <Status status={t.status} />
                    </td>
                    <td>{t.attempts}</td>
                    <td>{formatBytes(t.bytes)}</td>
                    <td>{formatDuration(t.startTime, t.endTime)}</td>
                    <td>
                      {t.error ? (
                        <>
                          <code>{t.error.code}</code> {t.error.message}
                        </>
                      ) : (
                        (t.statusText ?? '')
                      )}
                    </td>
                    <td>
                      <a href={link({ task: String(t.id) })} aria-current={String(t.id) === task ? 'true' : undefined}>
                        Log<Hidden> of task {t.id}</Hidden>
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager
          label="Tasks pages"
          hasPrevious={cursor !== undefined}
          next={tasks.data?.next_cursor}
          onPrevious={() => setPaging({ key, cursor: before[before.length - 1], before: before.slice(0, -1) })}
          onNext={(next) => setPaging({ key, cursor: next, before: cursor === undefined ? [] : [...before, cursor] })}
        />
      </section>
      {task && <LogPanel key={task} execution={id} task={task} live={running} closeHref={link({ task: undefined })} />}
    </>
  );
}

/** A task's log (`GET .../tasks/{task}/log`, text/plain), read again every 2 s while the execution runs. */
function LogPanel({ execution, task, live, closeHref }: { execution: string; task: string; live: boolean; closeHref: string }) {
  const { api } = useSession();
  const log = useLoad(() => api.text(`/executions/${seg(execution)}/tasks/${seg(task)}/log`), [execution, task], () => live);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section class="panel" aria-labelledby="log-title">
      <div class="panel-head">
        <h2 id="log-title" ref={heading} tabIndex={-1}>
          Log of task {task}
        </h2>
        <a href={closeHref}>
          Close<Hidden> the log</Hidden>
        </a>
      </div>
      {log.loading && <p role="status">Loading the log…</p>}
      {log.error?.status === 404 ? (
        // A server without task logs, or a log that has expired with its task.
        <p role="status">No log available for this task.</p>
      ) : (
        <ErrorNote error={log.error} what="The log could not be read" />
      )}
      {log.data !== undefined && (log.data === '' ? <p>The log is empty.</p> : <pre class="log" tabIndex={0} aria-label={`Log of task ${task}`}>{log.data}</pre>)}
    </section>
  );
}
