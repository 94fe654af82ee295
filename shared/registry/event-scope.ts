import { AsyncLocalStorage } from 'node:async_hooks';
import type { HttpEvent } from './http.js';

/**
 * HTTP events for whoever made the request. A RegistryClient (and its `onEvent`) is shared by
 * every task of a process, so its listener cannot tell which task a retry belongs to; a listener
 * set here with `withHttpListener` is told of the requests made inside `fn` only, whatever client
 * makes them, through Node's AsyncLocalStorage (the async context follows the awaits). Work two
 * callers share (a token fetch, a ping, a blob copied once for two tasks) reports to the caller
 * that started it.
 */
const scope = new AsyncLocalStorage<(e: HttpEvent) => void>();

/** Runs `fn` with `listener` told of the HTTP events (retries, responses) of its own requests. */
export function withHttpListener<T>(listener: (e: HttpEvent) => void, fn: () => T): T {
  return scope.run(listener, fn);
}

/** The listener of the calling async context, if one was set. */
export function scopedHttpListener(): ((e: HttpEvent) => void) | undefined {
  return scope.getStore();
}
