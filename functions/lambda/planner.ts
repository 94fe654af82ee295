// The planner: execution queue -> tasks. A scheduled rule's firing (`{"scheduledRule": name}`
// from EventBridge Scheduler) becomes an execution, as a manual run does (trigger `scheduled`, or
// `reconcile` for a reconcile schedule's `{"scheduledRule": name, "reconcile": true}`); a plan job lists the
// source, applies the rule's filters and records one task per artifact, sending each to the
// task queue. A plan job delivered again (the previous run died) resumes: artifacts already
// recorded are not recorded twice.
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describeError, ReplicatorError } from '../../shared/errors.js';
import type { ExecutionMessage } from '../../shared/adapters/aws/eventbridge-cron.js';
import type { PlanJob } from '../../shared/executions/messages.js';
import { failPlanning, runPlanJob } from '../../shared/executions/plan-job.js';
import { isTransient } from '../../shared/registry/errors.js';
import { lambdaRuntime, type LambdaRuntime } from './runtime.js';
import { processSqsEvent, receivedFromSqsRecord } from './sqs-batch.js';

/** Deliveries of a plan job before its planning is failed for good (the queue's DLQ allows 5). */
const MAX_PLAN_DELIVERIES = 3;

async function planRecord(rt: LambdaRuntime, record: SQSRecord): Promise<void> {
  const msg = receivedFromSqsRecord<ExecutionMessage>(record);
  if ('scheduledRule' in msg.body) {
    const trigger = msg.body.reconcile === true ? 'reconcile' : 'scheduled';
    try {
      const e = await rt.frontdoor.runRule(msg.body.scheduledRule, trigger);
      rt.log.info(`${trigger} run`, { rule: msg.body.scheduledRule, execution: e.id, status: e.status });
    } catch (err) {
      // A schedule that fired as its rule was deleted or disabled: nothing to run, nothing to retry.
      if (!(err instanceof ReplicatorError && (err.code === 'RULE_UNKNOWN' || err.code === 'RULE_DISABLED'))) throw err;
      rt.log.warn(`${trigger} run skipped`, { rule: msg.body.scheduledRule, reason: err.message });
    }
    return;
  }
  const job: PlanJob = { ...msg.body, resume: msg.body.resume || msg.receiveCount > 1 };
  const execution = await rt.store.getExecution(job.executionId);
  if (!execution || execution.planned) return; // gone, or planned by an earlier delivery
  try {
    await runPlanJob(job, { store: rt.store, taskQueue: rt.taskQueue, runtime: (r) => rt.ruleRuntime(r), log: rt.log });
  } catch (err) {
    // Configuration and content errors will not pass on another delivery; the network may.
    if (isTransient(err) && msg.receiveCount < MAX_PLAN_DELIVERIES) {
      rt.log.warn('planning failed, will be retried', { execution: job.executionId, rule: job.rule, delivery: msg.receiveCount, error: describeError(err) });
      throw err;
    }
    await failPlanning(rt.store, job, err, rt.log);
  }
}

export const handler = async (event: SQSEvent, context: Context) => {
  const rt = lambdaRuntime();
  await rt.freshConfig();
  return processSqsEvent(rt, event, context, (record) => planRecord(rt, record));
};
