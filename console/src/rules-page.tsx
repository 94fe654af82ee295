import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { query, seg } from './api';
import { useSession } from './session-context';
import { ErrorNote, Hidden, PageTitle, Progress, Status } from './common';
import { formatBytes, formatRef, formatTime, shortDigest } from './format';
import { href, useAction, useLoad } from './hooks';
import type { Drift, Execution, Page, PlanPreview, Rule } from './types';

/** A rule's trigger in words. */
function triggerText(t: Rule['trigger']): string {
  if (t.type === 'scheduled') return `Scheduled: ${t.trigger_settings?.cron ?? '?'}${t.trigger_settings?.timezone ? ` (${t.trigger_settings.timezone})` : ''}`;
  if (t.type === 'event_based') return 'On push (event-based)';
  return 'Manual';
}

type Panel = { kind: 'plan' | 'drift'; rule: string } | undefined;

/** Rules: source → destination, trigger, last execution; Run, Dry run, Drift, and enable/disable for the API's rules. */
export function RulesPage() {
  const { api, access } = useSession();
  const [panel, setPanel] = useState<Panel>();
  const rules = useLoad(
    async () => {
      const { items } = await api.get<{ items: Rule[] }>('/rules');
      // One small call per rule: its newest execution.
      const last = await Promise.all(items.map((r) => api.get<Page<Execution>>(`/executions${query({ rule: r.name, limit: 1 })}`).then((p) => p.items[0])));
      return items.map((rule, i) => ({ rule, last: last[i] }));
    },
    [],
    (rows) => rows.some((r) => r.last?.status === 'InProgress'),
  );
  const run = useAction(async (rule: string) => {
    const e = await api.post<Execution>('/executions', { rule });
    location.hash = href(['executions', e.id]);
  });
  const toggle = useAction(async (rule: string, enabled: boolean) => {
    const { origin: _origin, ...current } = await api.get<Rule>(`/rules/${seg(rule)}`);
    await api.put(`/rules/${seg(rule)}`, { ...current, enabled });
    await rules.reload();
  });
  const write = access === 'write';
  return (
    <>
      <PageTitle title="Rules">Rules</PageTitle>
      <ErrorNote error={rules.error} what="The rules could not be read" />
      <ErrorNote error={run.error} what="The rule could not be run" />
      <ErrorNote error={toggle.error} what="The rule could not be changed" />
      {rules.loading && <p role="status">Loading the rules…</p>}
      {rules.data && rules.data.length === 0 && <p>No rules yet: add them to the config file, or through the API.</p>}
      {rules.data && rules.data.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Replication rules and their last execution</caption>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Source → destination</th>
                <th scope="col">Trigger</th>
                <th scope="col">Last execution</th>
                <th scope="col">Enabled</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rules.data.map(({ rule, last }) => (
                <tr key={rule.name}>
                  <th scope="row">
                    {rule.name}
                    {rule.origin === 'api' && (
                      <>
                        {' '}
                        <span class="tag">API</span>
                      </>
                    )}
                  </th>
                  <td>
                    {rule.src_registry} → {rule.dest_registry}
                    {rule.dest_namespace ? `/${rule.dest_namespace}` : ''}
                  </td>
                  <td>{triggerText(rule.trigger)}</td>
                  <td>
                    {last ? (
                      <span class="stack">
                        <a href={href(['executions', last.id])}>
                          <Status status={last.status} />
                          <Hidden> execution {last.id}</Hidden>
                        </a>
                        {last.status === 'InProgress' && <Progress counts={last.counts} label={`Progress of ${rule.name}'s execution`} />}
                        <span class="small">
                          {formatTime(last.startTime)}
                          {typeof last.bytes === 'number' ? ` · ${formatBytes(last.bytes)}` : ''}
                        </span>
                      </span>
                    ) : (
                      'Never run'
                    )}
                  </td>
                  <td>
                    {rule.enabled ? 'Yes' : 'No'}
                    {write && rule.origin === 'api' && (
                      <button type="button" class="link" disabled={toggle.busy} onClick={() => toggle.run(rule.name, !rule.enabled)}>
                        {rule.enabled ? 'Disable' : 'Enable'}
                        <Hidden> {rule.name}</Hidden>
                      </button>
                    )}
                  </td>
                  <td class="actions">
                    {write && (
                      <button type="button" class="primary" disabled={!rule.enabled || run.busy} title={rule.enabled ? undefined : 'Disabled rules do not run'} onClick={() => run.run(rule.name)}>
                        Run<Hidden> {rule.name}</Hidden>
                      </button>
                    )}
                    {write && (
                      <button type="button" onClick={() => setPanel({ kind: 'plan', rule: rule.name })}>
                        Dry run<Hidden> {rule.name}</Hidden>
                      </button>
                    )}
                    <button type="button" onClick={() => setPanel({ kind: 'drift', rule: rule.name })}>
                      Drift<Hidden> of {rule.name}</Hidden>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {panel?.kind === 'plan' && <PlanPanel key={`plan-${panel.rule}`} rule={panel.rule} onClose={() => setPanel(undefined)} />}
      {panel?.kind === 'drift' && <DriftPanel key={`drift-${panel.rule}`} rule={panel.rule} onClose={() => setPanel(undefined)} />}
    </>
  );
}

/** A panel under the table, focused when it opens, with a Close button. */
function Panel({ title, id, onClose, children }: { title: string; id: string; onClose: () => void; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section class="panel" aria-labelledby={id}>
      <div class="panel-head">
        <h2 id={id} ref={heading} tabIndex={-1}>
          {title}
        </h2>
        <button type="button" onClick={onClose}>
          Close<Hidden> {title}</Hidden>
        </button>
      </div>
      {children}
    </section>
  );
}

function PlanPanel({ rule, onClose }: { rule: string; onClose: () => void }) {
  const { api } = useSession();
  const plan = useLoad(() => api.post<PlanPreview>(`/rules/${seg(rule)}/plan`), [rule]);
  const p = plan.data;
  return (
    <Panel title={`Dry run of ${rule}`} id="plan-title" onClose={onClose}>
      {plan.loading && <p role="status">Listing the source and applying the rule's filters… (nothing is copied)</p>}
      <ErrorNote error={plan.error} what="The plan could not be made" />
      {p && (
        <>
          <p role="status">
            {p.counts.items} artifact{p.counts.items === 1 ? '' : 's'} to copy from {p.source} to {p.destination}, {p.counts.excluded} left out by the filters, {p.counts.errors} that cannot be copied.
            Nothing was copied.
          </p>
          {p.truncated && (
            <p class="notice">
              Truncated: {p.truncatedBy === 'time' ? 'the listing took too long, so this is' : `the plan holds more than ${p.itemsLimit} artifacts; these are`} only the first ones.
              <code>harbor-replicator run {rule} --dry-run</code> prints the whole plan.
            </p>
          )}
          {p.items.length > 0 && (
            <div class="table-wrap">
              <table>
                <caption>Artifacts the rule would copy</caption>
                <thead>
                  <tr>
                    <th scope="col">Source</th>
                    <th scope="col">Destination</th>
                    <th scope="col">Digest</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((it, i) => (
                    <tr key={i}>
                      <td>{formatRef(it.source.repository, it.source.tags, it.source.host)}</td>
                      <td>{formatRef(it.destination.repository, it.destination.tags, it.destination.host)}</td>
                      <td title={it.source.digest ?? undefined}>{shortDigest(it.source.digest)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {p.errors.length > 0 && (
            <>
              <h3>Cannot be copied</h3>
              <ul>
                {p.errors.map((e, i) => (
                  <li key={i}>
                    <code>{e.code}</code> {e.what}: {e.error}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </Panel>
  );
}

function DriftPanel({ rule, onClose }: { rule: string; onClose: () => void }) {
  const { api } = useSession();
  const drift = useLoad(() => api.get<Drift>(`/rules/${seg(rule)}/drift`), [rule]);
  const d = drift.data;
  const none = drift.error?.code === 'NO_RECONCILE';
  return (
    <Panel title={`Drift of ${rule}`} id="drift-title" onClose={onClose}>
      {drift.loading && <p role="status">Loading the last drift…</p>}
      {none ? <p role="status">No reconcile of this rule has been recorded yet, so its drift is not known. A reconcile measures it (the rule's <code>reconcile:</code> schedule, or <code>run --reconcile</code>).</p> : <ErrorNote error={drift.error} what="The drift could not be read" />}
      {d && (
        <>
          <p>
            Measured {formatTime(d.takenAt)}
            {d.execution && (
              <>
                {' '}
                by <a href={href(['executions', d.execution])}>execution {d.execution}</a>
              </>
            )}
            .
          </p>
          <dl class="figures">
            <div>
              <dt>Missing</dt>
              <dd>{d.counts.missing}</dd>
            </div>
            <div>
              <dt>Different</dt>
              <dd>{d.counts.different}</dd>
            </div>
            <div>
              <dt>Extra</dt>
              <dd>{d.extrasChecked ? d.counts.extra : 'not checked'}</dd>
            </div>
            <div>
              <dt>In sync</dt>
              <dd>{d.counts.inSync}</dd>
            </div>
          </dl>
          {d.truncated && <p class="notice">Only the first {d.itemsLimit} entries are listed.</p>}
          {d.items.length > 0 && (
            <div class="table-wrap">
              <table>
                <caption>Tags that differ at the destination</caption>
                <thead>
                  <tr>
                    <th scope="col">Kind</th>
                    <th scope="col">Destination tag</th>
                    <th scope="col">Source digest</th>
                    <th scope="col">Destination digest</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((e, i) => (
                    <tr key={i}>
                      <td>{e.kind}</td>
                      <td>
                        {e.repository}:{e.tag}
                      </td>
                      <td title={e.sourceDigest}>{shortDigest(e.sourceDigest)}</td>
                      <td title={e.destinationDigest}>{shortDigest(e.destinationDigest)}</td>
                      <td>{e.kind === 'extra' ? (e.action === 'delete' ? 'deleted by a reconcile' : `kept${e.reason ? `: ${e.reason}` : ''}`) : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Panel>
  );
}
