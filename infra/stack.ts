import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { CfnTable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule as EventsRule, Schedule as EventsSchedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ENV } from '../functions/lambda/environment.js';
import { SWEEP_INTERVAL_MS } from '../shared/executions/sweeper.js';
import type { LambdaName } from './bundling.js';
import type { Deployment } from './config.js';
import { acknowledgeEcrRepositories, copierEcrStatements, ECR_AUTH_REASON, plannerEcrStatements } from './ecr.js';
import { ReplicatorFunction, type FunctionSettings } from './functions.js';
import { ReplicatorHttpApi } from './http-api.js';
import { Monitoring } from './monitoring.js';
import { PrivateNetwork } from './network.js';
import { acknowledge } from './nag.js';
import { visibilityFor, WorkQueue } from './queues.js';
import { RuleSchedules } from './schedules.js';
import { SecretReferences } from './secrets.js';
import { ReplicatorTable } from './table.js';

/** The receiver answers Harbor within its 3 s; it only records and enqueues. */
const RECEIVER: FunctionSettings = { memory_mb: 256, timeout_s: 10 };
/** The sweeper reads the open executions and writes a few repairs: small, and done well within its 5 minutes. */
const SWEEPER: FunctionSettings = { memory_mb: 512, timeout_s: 240 };
/** Planner messages per invocation: webhook bursts come as many small plan jobs. */
export const PLANNER_BATCH_SIZE = 10;

export interface HarborReplicatorStackProps extends StackProps {
  /** The validated config file (infra/config.ts). */
  deployment: Deployment;
  /** An existing SNS topic the alarms notify (context `alarmTopicArn`). */
  alarmTopicArn?: string | undefined;
}

/**
 * The harbor-replicator deployment: API Gateway (Harbor's webhook, the IAM-authorized API) ->
 * receiver and API functions; EventBridge Scheduler -> execution queue -> planner -> task queue
 * -> copier; one DynamoDB table; secrets referenced in Secrets Manager; alarms and a dashboard.
 * Built from the same config file as `serve`; it holds secret names, never their values.
 */
export class HarborReplicatorStack extends Stack {
  constructor(scope: Construct, id: string, props: HarborReplicatorStackProps) {
    super(scope, id, props);
    const { deployment } = props;
    const aws = deployment.config.aws;

    const table = new ReplicatorTable(this, 'Store').table;
    const executions = new WorkQueue(this, 'ExecutionQueue', { consumerTimeout: Duration.seconds(aws.planner.timeout_s) });
    const tasks = new WorkQueue(this, 'TaskQueue', { consumerTimeout: Duration.seconds(aws.copier.timeout_s) });
    const schedules = new RuleSchedules(this, 'Schedules', { schedules: deployment.schedules, executionQueue: executions.queue });
    const secrets = new SecretReferences(this, 'Secrets');
    // `aws.vpc`: every function in the given subnets and groups (to reach a private Harbor).
    const network = aws.vpc ? new PrivateNetwork(this, 'Network', aws.vpc) : undefined;

    /** Where the API keeps literal credentials, and where `{secret}` references through the API must be. */
    const apiSecretPrefix = apiSecretPrefixOf(deployment, this.stackName);

    const environment = {
      [ENV.table]: table.tableName,
      [ENV.executionQueueUrl]: executions.queue.queueUrl,
      [ENV.taskQueueUrl]: tasks.queue.queueUrl,
    };
    // The functions that resolve registry credentials (the API's ping, the planner, the copier).
    const credentialEnvironment = { [ENV.apiSecretPrefix]: apiSecretPrefix };
    const fn = (name: LambdaName, description: string, settings: FunctionSettings, extra: Record<string, string> = {}) =>
      new ReplicatorFunction(this, { webhook: 'Receiver', api: 'Api', planner: 'Planner', copier: 'Copier', sweeper: 'Sweeper' }[name], {
        name,
        description,
        settings,
        configJson: deployment.configJson,
        environment: { ...environment, ...extra },
        network: network?.functions,
      });
    const receiver = fn('webhook', "harbor-replicator: Harbor's webhook receiver (records the delivery, enqueues plan jobs)", RECEIVER);
    const api = fn('api', 'harbor-replicator: management API (registries, rules, executions, tasks)', aws.api, {
      ...credentialEnvironment,
      [ENV.scheduleGroup]: schedules.groupName,
      [ENV.schedulerRoleArn]: schedules.role.roleArn,
      [ENV.executionQueueArn]: executions.queue.queueArn,
    });
    const planner = fn('planner', "harbor-replicator: planner (lists a rule's source, writes tasks, enqueues them)", aws.planner, credentialEnvironment);
    const copier = fn('copier', 'harbor-replicator: copier (copies one artifact per task message)', aws.copier, credentialEnvironment);
    // Every execution ends: a lost message, a dead copier or planner, a lost counter write are
    // repaired within one lease plus one sweep. Its clocks are the queues' visibility timeouts.
    const sweeper = fn('sweeper', 'harbor-replicator: sweeper (every 5 minutes: recounts, requeues lost tasks, resumes dead plannings, closes executions)', SWEEPER, {
      [ENV.taskLostAfterMs]: String(visibilityFor(Duration.seconds(aws.copier.timeout_s)).toMilliseconds()),
      [ENV.planGraceMs]: String(visibilityFor(Duration.seconds(aws.planner.timeout_s)).toMilliseconds()),
    });
    // Without a NAT the endpoints are the functions' only way to AWS: a function created or
    // moved into the VPC before them would hang on its first call.
    const endpoints = network?.endpoints;
    if (endpoints) for (const f of [receiver, api, planner, copier, sweeper]) f.fn.node.addDependency(endpoints);
    new EventsRule(this, 'SweeperSchedule', {
      description: 'harbor-replicator: runs the sweeper',
      schedule: EventsSchedule.rate(Duration.minutes(SWEEP_INTERVAL_MS / 60_000)),
      targets: [new LambdaFunction(sweeper.fn, { retryAttempts: 0 })], // the next sweep is the retry
    });

    // Least privilege, function by function.
    for (const f of [receiver, api, planner, copier, sweeper]) table.grantReadWriteData(f.role);
    executions.queue.grantSendMessages(receiver.role);
    executions.queue.grantSendMessages(api.role);
    tasks.queue.grantSendMessages(planner.role);
    // A scheduled rule's firing ({"scheduledRule"}) becomes an execution through the frontdoor,
    // whose plan job goes back onto the execution queue (as a webhook's or the API's does).
    executions.queue.grantSendMessages(planner.role);
    tasks.queue.grantSendMessages(copier.role); // continuations of long copies are re-queued
    tasks.queue.grantSendMessages(sweeper.role); // tasks whose worker or message was lost
    executions.queue.grantSendMessages(sweeper.role); // plannings whose planner died
    if (deployment.webhookSecret) secrets.grantRead(receiver.role, [deployment.webhookSecret]);
    for (const f of [api, planner, copier]) secrets.grantRead(f.role, [...new Set([...deployment.registrySecrets, ...deployment.apiAllowedSecrets])]);
    // API-managed credentials: the API writes literals under the prefix; the three read them.
    secrets.grantApiManaged(api.role, [planner.role, copier.role], apiSecretPrefix);
    schedules.grantManageApiSchedules(api.role);
    const copierEcr = copierEcrStatements(deployment.ecr);
    const plannerEcr = plannerEcrStatements(deployment.ecr);
    for (const s of copierEcr) copier.role.addToPrincipalPolicy(s);
    for (const s of plannerEcr) planner.role.addToPrincipalPolicy(s);

    // Consumers: SqsEventSource also grants receive/delete/change-visibility on its queue.
    planner.fn.addEventSource(
      new SqsEventSource(executions.queue, {
        batchSize: PLANNER_BATCH_SIZE,
        reportBatchItemFailures: true,
        maxConcurrency: eventSourceConcurrency(aws.planner.reserved_concurrency),
      }),
    );
    copier.fn.addEventSource(
      new SqsEventSource(tasks.queue, { batchSize: 1, reportBatchItemFailures: true, maxConcurrency: eventSourceConcurrency(aws.copier.reserved_concurrency) }),
    );

    const http = new ReplicatorHttpApi(this, 'Http', {
      receiver: receiver.fn,
      api: api.fn,
      webhookRateLimit: aws.webhook_rate_limit,
      webhookBurstLimit: aws.webhook_burst_limit,
    });

    const monitoring = new Monitoring(this, 'Monitoring', {
      queues: [
        { label: 'Execution', queue: executions.queue, deadLetterQueue: executions.deadLetterQueue },
        { label: 'Task', queue: tasks.queue, deadLetterQueue: tasks.deadLetterQueue },
      ],
      functions: [
        { label: 'receiver', fn: receiver.fn },
        { label: 'api', fn: api.fn },
        { label: 'planner', fn: planner.fn },
        { label: 'copier', fn: copier.fn },
        { label: 'sweeper', fn: sweeper.fn },
      ],
      rules: deployment.config.rules.map((r) => r.name),
      alarmAction: props.alarmTopicArn ? new SnsAction(Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn)) : undefined,
    });

    // cdk-nag: the wildcards above, each acknowledged where it is granted, with its reason.
    const indexes = `AwsSolutions-IAM5[Resource::<${this.getLogicalId(table.node.defaultChild as CfnTable)}.Arn>/index/*]`;
    for (const f of [receiver, api, planner, copier, sweeper]) {
      acknowledge(f.role, { [indexes]: "Queries through the table's own global secondary indexes (GSI1-GSI4): the wildcard is this table's indexes only" });
    }
    receiver.acknowledgeAnyResource();
    api.acknowledgeAnyResource('scheduler:ListSchedules has no resource-level permissions');
    planner.acknowledgeAnyResource(...(plannerEcr.length ? [ECR_AUTH_REASON] : []));
    copier.acknowledgeAnyResource(...(copierEcr.length ? [ECR_AUTH_REASON] : []));
    sweeper.acknowledgeAnyResource();
    schedules.acknowledgeApiSchedulesGrant(api.role);
    for (const f of [api, planner, copier]) secrets.acknowledgeApiManaged(f.role, apiSecretPrefix);
    acknowledgeEcrRepositories(planner.role, plannerEcr);
    acknowledgeEcrRepositories(copier.role, copierEcr);

    new CfnOutput(this, 'WebhookUrl', { value: `${http.endpoint}/webhooks/harbor`, description: "Harbor webhook policy's Endpoint URL" });
    new CfnOutput(this, 'ApiUrl', { value: `${http.endpoint}/api/v1`, description: 'Management API (IAM, SigV4, service execute-api)' });
    new CfnOutput(this, 'TableName', { value: table.tableName });
    new CfnOutput(this, 'ExecutionQueueUrl', { value: executions.queue.queueUrl });
    new CfnOutput(this, 'TaskQueueUrl', { value: tasks.queue.queueUrl });
    new CfnOutput(this, 'DashboardName', { value: monitoring.dashboard.dashboardName });
  }
}

/** `api.secret_prefix`, or `harbor-replicator/<stack name>/api/`. */
export function apiSecretPrefixOf(deployment: Deployment, stackName: string): string {
  return deployment.config.api?.secret_prefix ?? `harbor-replicator/${stackName}/api/`;
}

/**
 * The event source's maximum concurrency when the function has reserved concurrency: without
 * it SQS polls beyond the reservation, the invocations are throttled and every throttled
 * receive counts towards the dead-letter queue's maxReceiveCount. (At least 2: SQS's minimum.)
 */
function eventSourceConcurrency(reserved: number | undefined): number | undefined {
  return reserved === undefined ? undefined : Math.max(2, reserved);
}
