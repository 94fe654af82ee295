import { useState } from 'preact/hooks';
import { ApiError, seg } from './api';
import { useSession } from './session-context';
import { ErrorNote, Hidden, PageTitle } from './common';
import { useLoad } from './hooks';
import type { PingResult, Registry } from './types';

type Check = { busy: true } | { busy: false; result?: PingResult; error?: ApiError };

/** Registries: type and URL (never a credential), and Harbor's "Test Connection". */
export function RegistriesPage() {
  const { api, access } = useSession();
  const registries = useLoad(() => api.get<{ items: Registry[] }>('/registries'), []);
  const [checks, setChecks] = useState<Record<string, Check>>({});
  const test = async (name: string) => {
    setChecks((c) => ({ ...c, [name]: { busy: true } }));
    try {
      const result = await api.post<PingResult>(`/registries/${seg(name)}/ping`);
      setChecks((c) => ({ ...c, [name]: { busy: false, result } }));
    } catch (err) {
      setChecks((c) => ({ ...c, [name]: { busy: false, error: err instanceof ApiError ? err : new ApiError(0, 'ERROR', (err as Error).message) } }));
    }
  };
  const write = access === 'write';
  return (
    <>
      <PageTitle title="Registries">Registries</PageTitle>
      <ErrorNote error={registries.error} what="The registries could not be read" />
      {registries.loading && <p role="status">Loading the registries…</p>}
      {registries.data && registries.data.items.length === 0 && <p>No registries yet.</p>}
      {registries.data && registries.data.items.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Registries the rules copy from and to</caption>
            <thead>
              <tr>
                <th scope="col">Registry</th>
                <th scope="col">Type</th>
                <th scope="col">URL</th>
                <th scope="col">Defined in</th>
                <th scope="col">Connection</th>
              </tr>
            </thead>
            <tbody>
              {registries.data.items.map((r) => {
                const check = checks[r.name];
                return (
                  <tr key={r.name}>
                    <th scope="row">{r.name}</th>
                    <td>{r.type}</td>
                    <td>{r.url ?? '—'}</td>
                    <td>
                      {r.origin === 'api' ? 'API' : 'config file'}
                      {r.invalid && <span class="error"> unusable: {r.invalid}</span>}
                    </td>
                    <td>
                      {write && (
                        <button type="button" disabled={check?.busy} onClick={() => test(r.name)}>
                          Test connection<Hidden> to {r.name}</Hidden>
                        </button>
                      )}
                      <span role="status" class="ping">
                        {check?.busy && 'Testing…'}
                        {check && !check.busy && check.result && <PingText result={check.result} />}
                      </span>
                      {check && !check.busy && <ErrorNote error={check.error} what="The test could not be made" />}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function PingText({ result }: { result: PingResult }) {
  const status = result.status === null ? 'no answer' : `HTTP ${result.status}`;
  if (result.ok) return <span class="status ok">OK ({status})</span>;
  return (
    <span class="status bad">
      Failed: <code>{result.code ?? 'UNKNOWN'}</code> ({status})
    </span>
  );
}
