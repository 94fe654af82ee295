import { useState } from 'preact/hooks';
import { query, seg } from './api';
import { useSession } from './session-context';
import { CountsText, ErrorNote, Hidden, Pager, PageTitle, Progress, Status, StatusFilter } from './common';
import { formatBytes, formatDuration, formatTime } from './format';
import { href, useAction, useLoad } from './hooks';
import { EXECUTION_STATUSES, type Execution, type Page, type Rule } from './types';

const PAGE_SIZE = 25;

/** Executions, newest first: filter by rule and status (kept in the URL), pages, Stop on running ones. */
export function ExecutionsPage({ params }: { params: URLSearchParams }) {
  const { api, access } = useSession();
  const rule = params.get('rule') ?? '';
  const status = params.get('status') ?? '';
  // The page's cursor and those of the pages before it (the API's go forward only), for these filters.
  const key = `${rule}\n${status}`;
  const [paging, setPaging] = useState<{ key: string; cursor?: string; before: string[] }>({ key, before: [] });
  const cursor = paging.key === key ? paging.cursor : undefined;
  const before = paging.key === key ? paging.before : [];
  const rules = useLoad(() => api.get<{ items: Rule[] }>('/rules'), []);
  const list = useLoad(
    () => api.get<Page<Execution>>(`/executions${query({ rule, status, limit: PAGE_SIZE, cursor })}`),
    [rule, status, cursor],
    (page) => page.items.some((e) => e.status === 'InProgress'),
  );
  const stop = useAction(async (id: string) => {
    await api.post(`/executions/${seg(id)}/stop`);
    await list.reload();
  });
  const filter = (next: { rule?: string; status?: string }) => {
    location.hash = href(['executions'], { rule, status, ...next });
  };
  return (
    <>
      <PageTitle title="Executions">Executions</PageTitle>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter executions">
        <label>
          Rule
          <select value={rule} onChange={(e) => filter({ rule: e.currentTarget.value })}>
            <option value="">All rules</option>
            {rules.data?.items.map((r) => (
              <option key={r.name} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
        <StatusFilter value={status} statuses={EXECUTION_STATUSES} onChange={(s) => filter({ status: s })} />
      </form>
      <ErrorNote error={list.error} what="The executions could not be read" />
      <ErrorNote error={stop.error} what="The execution could not be stopped" />
      {list.loading && <p role="status">Loading the executions…</p>}
      {list.data && list.data.items.length === 0 && <p>No executions{rule || status ? ' match these filters' : ' yet'}.</p>}
      {list.data && list.data.items.length > 0 && <ExecutionsTable items={list.data.items} canStop={access === 'write'} onStop={stop.run} stopping={stop.busy} />}
      <Pager
        label="Executions pages"
        hasPrevious={cursor !== undefined}
        next={list.data?.next_cursor}
        onPrevious={() => setPaging({ key, cursor: before[before.length - 1], before: before.slice(0, -1) })}
        onNext={(next) => setPaging({ key, cursor: next, before: cursor === undefined ? [] : [...before, cursor] })}
      />
    </>
  );
}

function ExecutionsTable({ items, canStop, onStop, stopping }: { items: Execution[]; canStop: boolean; onStop: (id: string) => void; stopping: boolean }) {
  // Servers that count an execution's bytes say so with the field; older ones get no column.
  const bytes = items.some((e) => typeof e.bytes === 'number');
  return (
    <div class="table-wrap">
      <table>
        <caption>Executions, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Execution</th>
            <th scope="col">Rule</th>
            <th scope="col">Status</th>
            <th scope="col">Trigger</th>
            <th scope="col">Tasks</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            {bytes && <th scope="col">Bytes</th>}
            {canStop && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {items.map((e) => (
            <tr key={e.id}>
              <th scope="row">
                <a href={href(['executions', e.id])}>{e.id}</a>
              </th>
              <td>{e.rule}</td>
              <td>
                <Status status={e.status} />
                {e.statusText && <span class="small"> {e.statusText}</span>}
              </td>
              <td>{e.trigger}</td>
              <td>
                {e.status === 'InProgress' && <Progress counts={e.counts} label={`Progress of execution ${e.id}`} />}
                <CountsText counts={e.counts} />
              </td>
              <td>{formatTime(e.startTime)}</td>
              <td>{formatDuration(e.startTime, e.endTime)}</td>
              {bytes && <td>{formatBytes(e.bytes)}</td>}
              {canStop && (
                <td>
                  {e.status === 'InProgress' &&
                    (e.stopRequested ? (
                      'Stopping…'
                    ) : (
                      <button type="button" class="danger" disabled={stopping} onClick={() => onStop(e.id)}>
                        Stop<Hidden> execution {e.id}</Hidden>
                      </button>
                    ))}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
