import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Access, Api } from './api';

/** What every page gets: the API with the token, and what the token may do. */
export interface SessionContext {
  api: Api;
  access: Access;
}

export const Session = createContext<SessionContext | undefined>(undefined);

/** The signed-in session (pages are rendered only inside one). */
export function useSession(): SessionContext {
  const s = useContext(Session);
  if (!s) throw new Error('no session');
  return s;
}
