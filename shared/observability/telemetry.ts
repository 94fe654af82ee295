/** Structured logging the engine uses (Powertools Logger in `serve` and on Lambda). */
export interface Log {
  info(message: string, ...extra: Array<Record<string, unknown>>): void;
  warn(message: string, ...extra: Array<Record<string, unknown>>): void;
  error(message: string, ...extra: Array<Record<string, unknown>>): void;
}

/** What the service counts (Prometheus in `serve`, CloudWatch on Lambda). */
export interface Counters {
  webhook(result: string): void;
  taskFinished(status: string, bytes: number): void;
  executionFinished(status: string): void;
  /** A repair of the sweeper (`recount`, `requeue`, `lost`, `replan`, `close`). */
  sweeperRepair(kind: string): void;
}

/** Logs nothing. */
export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };

/** Counts nothing. */
export const noCounters: Counters = { webhook: () => {}, taskFinished: () => {}, executionFinished: () => {}, sweeperRepair: () => {} };
