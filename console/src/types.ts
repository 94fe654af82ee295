// The API's shapes as the console reads them (see /api/v1/openapi.json). The console is a
// client like any other: it reads only these fields, and treats anything else as unknown.

export type ExecutionStatus = 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['InProgress', 'Succeed', 'Failed', 'Stopped'];
export type TaskStatus = 'Pending' | 'Scheduled' | 'Running' | 'Stopped' | 'Error' | 'Success';
export const TASK_STATUSES: readonly TaskStatus[] = ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'];

export interface Counts {
  total: number;
  pending: number;
  scheduled: number;
  running: number;
  succeed: number;
  failed: number;
  stopped: number;
}

export interface Execution {
  id: string;
  rule: string;
  trigger: string;
  status: ExecutionStatus;
  statusText?: string;
  counts: Counts;
  planned: boolean;
  stopRequested: boolean;
  startTime: string;
  endTime?: string;
  /** Bytes copied by its tasks (newer servers). */
  bytes?: number;
}

export interface TaskRef {
  registry: string;
  repository: string;
  tags: string[];
}

export interface Task {
  executionId: string;
  id: number;
  operation: 'copy' | 'deletion';
  source: TaskRef;
  destination: TaskRef;
  digest?: string;
  status: TaskStatus;
  statusText?: string;
  error?: { code: string; message: string };
  attempts: number;
  bytes: number;
  startTime?: string;
  endTime?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Rule {
  name: string;
  description?: string;
  src_registry: string;
  dest_registry: string;
  dest_namespace?: string;
  trigger: { type: string; trigger_settings?: { cron?: string; timezone?: string } };
  enabled: boolean;
  origin: 'file' | 'api';
  [field: string]: unknown;
}

export interface Registry {
  name: string;
  type: string;
  url?: string;
  origin: 'file' | 'api';
  invalid?: string;
}

export interface PingResult {
  ok: boolean;
  status: number | null;
  code: string | null;
}

export interface PlanSide {
  registry: string;
  host: string;
  repository: string;
  tags: string[];
  digest?: string | null;
}

export interface PlanPreview {
  rule: string;
  source: string;
  destination: string;
  items: Array<{ operation: string; source: PlanSide; destination: PlanSide }>;
  errors: Array<{ what: string; code: string; error: string }>;
  counts: { items: number; excluded: number; errors: number };
  truncated: boolean;
  truncatedBy?: 'items' | 'time';
  itemsLimit: number;
}

export interface DriftEntry {
  kind: 'missing' | 'different' | 'extra';
  repository: string;
  tag: string;
  sourceRepository?: string;
  sourceDigest?: string;
  destinationDigest?: string;
  action?: 'delete' | 'keep';
  reason?: string;
}

export interface Drift {
  rule: string;
  execution?: string;
  takenAt: string;
  counts: { missing: number; different: number; extra: number; inSync: number };
  extrasChecked: boolean;
  items: DriftEntry[];
  truncated: boolean;
  itemsLimit: number;
}
