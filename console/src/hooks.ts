import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** How often a page asks again while something it shows is running. */
export const POLL_MS = 2000;

/** The page's place, from the URL's fragment: `#/executions/ID?status=Error` → path and params (never a token). */
export interface Route {
  path: string[];
  params: URLSearchParams;
}

function currentRoute(): Route {
  const [path = '', q = ''] = location.hash.replace(/^#\/?/, '').split('?', 2);
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(q) };
}

/** The route, following the fragment as it changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const on = () => setRoute(currentRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** A fragment link: `href('executions', id, {status})`. */
export function href(path: ReadonlyArray<string>, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`;
}

/** What a load gives a page: the data, the error, and whether the first answer is still awaited. */
export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Ask again (the data stays shown until the answer). */
  reload: () => Promise<void>;
}

/**
 * Loads with `load` when `deps` change; only the newest answer is kept (a slow one that arrives
 * after a newer one is dropped). While `poll(data)` is true, loads again every 2 s.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], poll?: (data: T) => boolean): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ApiError | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const seq = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await loadRef.current();
      if (mine === seq.current) setState({ data, error: undefined, loading: false });
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(0, 'ERROR', (err as Error).message);
      if (mine === seq.current) setState((s) => ({ data: s.data, error: e, loading: false }));
    }
  }, []);
  useEffect(() => {
    setState({ data: undefined, error: undefined, loading: true });
    void reload();
    // Answers to an older route are dropped.
    return () => void ++seq.current;
  }, deps);
  const polling = state.data !== undefined && poll !== undefined && poll(state.data);
  useEffect(() => {
    if (!polling) return;
    let timer: ReturnType<typeof setTimeout>;
    let stopped = false;
    const tick = () => {
      timer = setTimeout(async () => {
        await reload();
        if (!stopped) tick();
      }, POLL_MS);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [polling, reload, ...deps]);
  return { ...state, reload };
}

/** A button's action: runs once at a time, keeps its error to show. */
export function useAction<A extends unknown[]>(act: (...args: A) => Promise<void>): { run: (...args: A) => Promise<void>; busy: boolean; error: ApiError | undefined } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const run = async (...args: A) => {
    setBusy(true);
    setError(undefined);
    try {
      await act(...args);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'ERROR', (err as Error).message));
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error };
}
