// The management API as the page calls it: same origin, relative to the page (so a reverse
// proxy may serve the console under a path), the token in the Authorization header only.

/** An answer other than 2xx, or no answer: the status (0: none), a code and a message to show. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the token may do (`GET /access`). */
export type Access = 'write' | 'read';

/** The calls the pages make, each with the token. */
export interface Api {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  /** A text/plain answer (a task's log). */
  text(path: string): Promise<string>;
}

/** A 401 on any call means the token is no longer good: the page signs out (`onUnauthorized`). */
export function apiClient(token: string, onUnauthorized: () => void): Api {
  const call = async (method: string, path: string, body: unknown, accept: string): Promise<Response> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
    } catch {
      throw new ApiError(0, 'NETWORK', 'The server could not be reached. Is it still running?');
    }
    if (res.ok) return res;
    const error = await errorOf(res);
    if (res.status === 401) onUnauthorized();
    throw error;
  };
  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await call(method, path, body, 'application/json');
    return (res.status === 204 ? undefined : await res.json()) as T;
  };
  return {
    get: (path) => json('GET', path),
    post: (path, body) => json('POST', path, body ?? {}),
    put: (path, body) => json('PUT', path, body),
    text: async (path) => (await call('GET', path, undefined, 'text/plain')).text(),
  };
}

/** `{"error": {code, message}}` (ours), `{"message"}` (API Gateway), or the status alone. */
async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
    else if (typeof body.message === 'string') message = body.message;
  } catch {
    // not JSON: the status says it
  }
  return new ApiError(res.status, code, message);
}

/** `name` as one path segment. */
export const seg = (name: string | number) => encodeURIComponent(String(name));

/** A query string from the defined values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
