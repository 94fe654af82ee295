/**
 * The contract between the CDK stack (infra/stack.ts) and the Lambda handlers: the environment
 * each function is given. The stack sets these; the handlers read them once per cold start.
 */
export const ENV = {
  /** The DynamoDB table (executions, tasks, deliveries, API-managed config). */
  table: 'TABLE_NAME',
  /** The execution queue (plan jobs and scheduled-rule messages), consumed by the planner. */
  executionQueueUrl: 'EXECUTION_QUEUE_URL',
  /** The task queue (one message per task), consumed by the copier. */
  taskQueueUrl: 'TASK_QUEUE_URL',
  /** API function: the schedule group its API-managed schedules live in. */
  scheduleGroup: 'SCHEDULE_GROUP',
  /** API function: the role EventBridge Scheduler assumes to send to the execution queue. */
  schedulerRoleArn: 'SCHEDULER_ROLE_ARN',
  /** API function: the execution queue's ARN (the schedules' target). */
  executionQueueArn: 'EXECUTION_QUEUE_ARN',
  /** Sweeper: a Pending task due this long ago (ms) and never claimed has lost its message (the task queue's visibility). */
  taskLostAfterMs: 'TASK_LOST_AFTER_MS',
  /** Sweeper: a planning never started has this long (ms) after its execution was created (the execution queue's visibility). */
  planGraceMs: 'PLAN_GRACE_MS',
  /**
   * API, planner and copier: the Secrets Manager name prefix of API-managed credentials (the API
   * writes literals there; `{secret}` references through the API must be under it).
   */
  apiSecretPrefix: 'API_SECRET_PREFIX',
} as const;

/**
 * The validated config file, as JSON. The stack bakes it into each bundle at synth with
 * esbuild's `define` (a config can outgrow Lambda's 4 KiB of environment); unbundled (tests)
 * it is read from the environment variable of the same name.
 */
export function bakedConfigJson(): string | undefined {
  return process.env.REPLICATOR_CONFIG;
}

/** Required environment variable, or a clear error naming it. */
export function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (the stack sets it)`);
  return v;
}
