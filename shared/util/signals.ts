import { setMaxListeners } from 'node:events';

/**
 * One signal aborted when any of `signals` aborts, with its reason, and an `unlink` that removes
 * the listeners. Unlike AbortSignal.any, nothing stays attached to a long-lived parent (an
 * execution's stop signal outlives thousands of tasks) once `unlink` is called.
 */
export function linkSignals(signals: ReadonlyArray<AbortSignal | undefined>): { signal: AbortSignal; unlink(): void } {
  const ctl = new AbortController();
  setMaxListeners(0, ctl.signal); // a task's signal: every request of the task listens to it at once
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  const listeners = present.map((s) => {
    const forward = () => ctl.abort(s.reason);
    if (s.aborted) forward();
    else s.addEventListener('abort', forward, { once: true });
    return () => s.removeEventListener('abort', forward);
  });
  return { signal: ctl.signal, unlink: () => listeners.forEach((remove) => remove()) };
}
