import type { HarborArtifactEvent } from '../harbor/webhook.js';

/**
 * The queue contracts of the engine, in one place: what the front door sends the planners, what
 * the planners send the workers. The same messages go through the in-process queues of `run` and
 * `serve` and through SQS on AWS (where a schedule's message joins them on the execution queue:
 * see adapters/aws/eventbridge-cron.ts).
 */

/** Work for a planner: a rule's full plan, or one artifact of a webhook event. */
export interface PlanJob {
  executionId: string;
  rule: string;
  event?: { type: HarborArtifactEvent['type']; repository: string; digest: string; tag: string | undefined } | undefined;
  /** Resuming a planning a crash interrupted (artifacts already recorded are skipped). */
  resume?: boolean;
}

/** A task queue message: the task itself is read from the store. */
export interface TaskMessage {
  executionId: string;
  taskId: number;
  /** The task was handed over before a deadline: this run continues it (not a new attempt). */
  continuation?: boolean;
}
