import { setMaxListeners } from 'node:events';

/**
 * One signal aborted when any of `signals` aborts, with its reason, and an `unlink` that removes
 * the listeners. Unlike AbortSignal.any, nothing stays attached to a long-lived parent (an
 * execution's stop signal outlives thousands of tasks) once `unlink` is called.
 */
export function linkSignals(signals: ReadonlyArray<AbortSignal | undefined>): { signal: AbortSignal; unlink(): void } {
  const ctl = new AbortController();
  // Every request in flight listens to it (a planning's 32 destination HEADs at once): without
  // this, Node warned "MaxListenersExceededWarning" on stderr in the middle of `run`'s output.
  setMaxListeners(0, ctl.signal);
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  const listeners = present.map((s) => {
    const forward = () => ctl.abort(s.reason);
    if (s.aborted) forward();
    else s.addEventListener('abort', forward, { once: true });
    return () => s.removeEventListener('abort', forward);
  });
  return { signal: ctl.signal, unlink: () => listeners.forEach((remove) => remove()) };
}
