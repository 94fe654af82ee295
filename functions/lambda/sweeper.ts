// The sweeper: every 5 minutes (an EventBridge schedule), repairs what a fault left so every
// execution ends: recounts open executions from their tasks, requeues tasks whose lease expired
// or whose message was lost (LOST once their attempts are spent), resumes plannings whose
// planner died (at most 3 times), closes executions whose tasks are all final.
import type { Context } from 'aws-lambda';
import { sweep } from '../../shared/executions/sweeper.js';
import { ENV, requireEnv } from './environment.js';
import { lambdaRuntime } from './runtime.js';

export const handler = async (_event: unknown, context: Context) => {
  const rt = lambdaRuntime();
  rt.log.addContext(context);
  await rt.freshConfig();
  try {
    const report = await sweep({
      store: rt.store,
      taskQueue: rt.taskQueue,
      planQueue: rt.executionQueue,
      log: rt.log,
      onRepair: (kind) => rt.counters.sweeperRepair(kind),
      lostAfterMs: Number(requireEnv(ENV.taskLostAfterMs)),
      planGraceMs: Number(requireEnv(ENV.planGraceMs)),
    });
    rt.log.info('sweep done', { ...report });
    return report;
  } finally {
    if (rt.metrics.hasStoredMetrics()) rt.metrics.publishStoredMetrics();
  }
};
