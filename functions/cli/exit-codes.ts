/** Exit codes of every command (DRIFT: `run --reconcile --dry-run` found drift, as regsync's `check`). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, DRIFT: 3 } as const;
