/** Structured logging the engine uses (Powertools Logger in `serve` and on Lambda). */
export interface Log {
  info(message: string, ...extra: Array<Record<string, unknown>>): void;
  warn(message: string, ...extra: Array<Record<string, unknown>>): void;
  error(message: string, ...extra: Array<Record<string, unknown>>): void;
}

/** An execution that ended, as the per-rule metrics read it. */
export interface FinishedExecution {
  rule: string;
  startTime: string;
  endTime?: string | undefined;
}

/** Tags out of step at a rule's destination, as a reconcile measured them. */
export interface DriftFigures {
  missing: number;
  different: number;
  extra: number;
}

/** The final statuses an execution can end with (Harbor's, as the API shows them). */
export const FINAL_EXECUTION_STATUSES = ['Succeed', 'Failed', 'Stopped'] as const;

/** What the per-rule gauges show of one rule (read from the store at scrape time). */
export interface RuleFigures {
  rule: string;
  /** The rule's last execution that ended: its status and how long it took. */
  last?: { status: (typeof FINAL_EXECUTION_STATUSES)[number]; seconds: number } | undefined;
  /** Its last reconcile's drift. */
  drift?: DriftFigures | undefined;
}

/** What the service counts (Prometheus in `serve`, CloudWatch on Lambda). */
export interface Counters {
  webhook(result: string): void;
  taskFinished(status: string, bytes: number): void;
  /** An execution ended with `status`; with the execution, per-rule figures too (its rule, its duration). */
  executionFinished(status: string, execution?: FinishedExecution): void;
  /** A reconcile recorded a rule's drift (published where figures are pushed: CloudWatch). */
  driftMeasured?(rule: string, drift: DriftFigures): void;
  /** A repair of the sweeper (`recount`, `requeue`, `lost`, `replan`, `close`). */
  sweeperRepair(kind: string): void;
}

/** Logs nothing. */
export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };

/** Counts nothing. */
export const noCounters: Counters = { webhook: () => {}, taskFinished: () => {}, executionFinished: () => {}, sweeperRepair: () => {} };
