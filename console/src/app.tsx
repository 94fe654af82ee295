import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, apiClient, type Access } from './api';
import { ErrorNote } from './common';
import { ExecutionPage } from './execution-page';
import { ExecutionsPage } from './executions-page';
import { href, useRoute } from './hooks';
import { RegistriesPage } from './registries-page';
import { RulesPage } from './rules-page';
import { session } from './session';
import { Session } from './session-context';

/** Asks the API what the token may do: a 401 means a wrong token. */
async function check(token: string, onUnauthorized: () => void): Promise<Access> {
  const { access } = await apiClient(token, onUnauthorized).get<{ access: Access }>('/access');
  if (access !== 'read' && access !== 'write') throw new ApiError(0, 'UNEXPECTED', 'The server gave an answer this console does not know; is it a harbor-replicator?');
  return access;
}

const WRONG_TOKEN =
  'This token was not accepted. Use the api.token or api.read_token of this server, or with "harbor-replicator console --aws", the one-time code it printed when it started.';

/** The console: the sign-in form until a token is accepted, then the pages. */
export function App() {
  const [signed, setSigned] = useState<{ token: string; access: Access } | undefined>();
  const [checking, setChecking] = useState(() => session.token() !== undefined);
  const [notice, setNotice] = useState<string | undefined>();

  const signOut = (why?: string) => {
    session.clear();
    setSigned(undefined);
    setNotice(why);
  };
  const onUnauthorized = () => signOut('The server no longer accepts this token (401). Sign in again.');

  useEffect(() => {
    const token = session.token();
    if (!token) return;
    check(token, () => {})
      .then((access) => setSigned({ token, access }))
      .catch((err: ApiError) => signOut(err.status === 401 ? WRONG_TOKEN : `${err.message} (${err.code})`))
      .finally(() => setChecking(false));
  }, []);

  const context = useMemo(() => (signed ? { api: apiClient(signed.token, onUnauthorized), access: signed.access } : undefined), [signed]);

  if (checking) return <p class="checking">Checking the session…</p>;
  if (!context) {
    return (
      <SignIn
        notice={notice}
        onSignIn={async (token) => {
          const access = await check(token, () => {});
          session.save(token);
          setNotice(undefined);
          setSigned({ token, access });
        }}
      />
    );
  }
  return (
    <Session.Provider value={context}>
      <Shell access={context.access} onSignOut={() => signOut('Signed out.')} />
    </Session.Provider>
  );
}

function SignIn({ notice, onSignIn }: { notice: string | undefined; onSignIn: (token: string) => Promise<void> }) {
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = 'Sign in · harbor-replicator';
    input.current?.focus();
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = input.current?.value.trim() ?? '';
    if (!token) return;
    setBusy(true);
    setError(undefined);
    try {
      await onSignIn(token);
    } catch (err) {
      const a = err instanceof ApiError ? err : new ApiError(0, 'ERROR', (err as Error).message);
      setError(a.status === 401 ? new ApiError(401, a.code, WRONG_TOKEN) : a);
      input.current?.select();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>harbor-replicator</h1>
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h2 id="signin-title">Sign in to the replication console</h2>
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        <label for="token">API token</label>
        <input ref={input} id="token" name="token" type="password" autocomplete="off" spellcheck={false} required aria-describedby="token-help" aria-invalid={error ? 'true' : undefined} />
        <p id="token-help" class="help">
          The server's <code>api.token</code>, or <code>api.read_token</code> to look without changing anything. With <code>harbor-replicator console --aws</code>: the
          one-time code it printed. Kept in this browser tab only, until you close it or sign out.
        </p>
        <ErrorNote error={error} what="Sign-in failed" />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

const SECTIONS = [
  ['rules', 'Rules'],
  ['executions', 'Executions'],
  ['registries', 'Registries'],
] as const;

function Shell({ access, onSignOut }: { access: Access; onSignOut: () => void }) {
  const route = useRoute();
  const [section = 'rules', id] = route.path;
  const main = useRef<HTMLElement>(null);
  let page;
  if (section === 'executions' && id) page = <ExecutionPage id={id} params={route.params} />;
  else if (section === 'executions') page = <ExecutionsPage params={route.params} />;
  else if (section === 'registries') page = <RegistriesPage />;
  else page = <RulesPage />;
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">harbor-replicator</span>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map(([key, label]) => (
              <li key={key}>
                <a href={href([key])} aria-current={section === key || (key === 'rules' && !SECTIONS.some(([k]) => k === section)) ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">{access === 'read' ? 'Read-only token' : 'Signed in'}</span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
