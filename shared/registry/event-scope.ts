import { AsyncLocalStorage } from 'node:async_hooks';

/** Observability hook: retries and finished requests, with redacted URLs only. */
export type HttpEvent =
  | { kind: 'retry'; method: string; url: string; attempt: number; delayMs: number; reason: string; /** The status that made it retry (none: the connection failed). */ status?: number | undefined }
  | { kind: 'response'; method: string; url: string; status: number; ms: number; rateLimit?: RateLimitHeaders | undefined };

/** A registry's pull budget as its answer states it (Docker Hub's `ratelimit-limit` / `ratelimit-remaining`). */
export interface RateLimitHeaders {
  remaining: number;
  limit?: number | undefined;
  /** The window the budget is counted over, in seconds (`;w=21600`). */
  windowSeconds?: number | undefined;
}

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
