// The management API (/api/v1, IAM-authorized at the gateway): registries, rules, executions and
// tasks, the same routes as `serve`. Rules created or changed here get their EventBridge
// schedules (name prefix `api-`: `api-<rule>` for a scheduled trigger, `api-reconcile-<rule>` for
// a drift reconcile) created, updated or deleted after each change.
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { EventBridgeSchedules } from '../../shared/adapters/aws/eventbridge-schedules.js';
import { ENV, requireEnv } from './environment.js';
import { httpHandler } from './http.js';
import type { LambdaRuntime } from './runtime.js';

let schedules: EventBridgeSchedules | undefined;

async function syncSchedules(rt: LambdaRuntime): Promise<void> {
  schedules ??= new EventBridgeSchedules({
    client: rt.tracer.captureAWSv3Client(new SchedulerClient({ maxAttempts: 5 })),
    group: requireEnv(ENV.scheduleGroup),
    roleArn: requireEnv(ENV.schedulerRoleArn),
    queueArn: requireEnv(ENV.executionQueueArn),
  });
  const apiRules = rt.config.loaded.config.rules.filter((r) => rt.config.origin('rule', r.name) === 'api');
  const changed = await schedules.sync(apiRules);
  if (changed.created.length + changed.updated.length + changed.deleted.length > 0) rt.log.info('schedules synced', changed);
}

export const handler = httpHandler({ routes: 'api', onConfigChange: syncSchedules });
