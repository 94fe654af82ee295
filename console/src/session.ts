// The token lives in this tab's sessionStorage only: never in a URL, a cookie or localStorage,
// gone when the tab closes.
const KEY = 'harbor-replicator.token';

export const session = {
  token(): string | undefined {
    try {
      return sessionStorage.getItem(KEY) ?? undefined;
    } catch {
      return undefined;
    }
  },
  save(token: string): void {
    sessionStorage.setItem(KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(KEY);
  },
};
