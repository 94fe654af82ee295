import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
  type IAlarmAction,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from './functions.js';

/**
 * The handlers' metrics (Powertools Metrics, namespace HarborReplicator, the default `service`
 * dimension): counts per execution and task outcome, and bytes copied. The execution counts and
 * the last two are also published per rule (dimension `rule` too; `DriftArtifacts` also `kind`),
 * see functions/lambda/metrics.ts.
 */
export const CUSTOM_METRICS = {
  executionsFailed: 'ExecutionsFailed',
  executionsSucceeded: 'ExecutionsSucceeded',
  tasksFailed: 'TasksFailed',
  tasksSucceeded: 'TasksSucceeded',
  bytesCopied: 'BytesCopied',
  executionDuration: 'ExecutionDuration',
  driftArtifacts: 'DriftArtifacts',
} as const;

/** A custom metric as the handlers emit it, summed per period. */
export function customMetric(name: string, period = Duration.minutes(5)): Metric {
  return new Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE_NAME }, statistic: 'Sum', period });
}

/** A custom metric of one rule (dimensions `service` and `rule`), summed per period. */
export function ruleMetric(name: string, rule: string, period = Duration.minutes(5)): Metric {
  return new Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE_NAME, rule }, statistic: 'Sum', period });
}

/** Every rule's series of a per-rule metric (a CloudWatch search: rules made through the API too). */
function perRuleSearch(name: string, statistic: string, label: string): MathExpression {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},rule,service} MetricName="${name}"', '${statistic}', 300)`,
    usingMetrics: {},
    label,
    period: Duration.minutes(5),
  });
}

export interface MonitoringProps {
  queues: Array<{ label: string; queue: IQueue; deadLetterQueue: IQueue }>;
  functions: Array<{ label: string; fn: IFunction }>;
  /** The config file's rules: each gets an alarm on its failed executions. */
  rules?: readonly string[];
  /** Where alarms notify (an existing SNS topic), if anywhere. */
  alarmAction?: IAlarmAction | undefined;
}

/**
 * Alarms on what needs a person: a message in a dead-letter queue (a plan or a task that failed
 * five receives), a failed execution (any rule, API-made ones included), and a failed execution
 * of each config-file rule (its own alarm, to route or silence it alone); a dashboard of queues,
 * functions and replication.
 */
export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    for (const q of props.queues) {
      this.alarms.push(
        new Alarm(this, `${q.label}DeadLetters`, {
          alarmDescription: `harbor-replicator: messages in the ${q.label.toLowerCase()} dead-letter queue (received 5 times without success); inspect, fix, then redrive`,
          metric: q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    this.alarms.push(
      new Alarm(this, 'ExecutionsFailed', {
        alarmDescription: 'harbor-replicator: an execution ended Failed (a task ended in Error); see its tasks through the API',
        metric: customMetric(CUSTOM_METRICS.executionsFailed),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    // Rules made through the API come and go without a deployment: the aggregated alarm covers them.
    for (const rule of props.rules ?? []) {
      this.alarms.push(
        new Alarm(this, `ExecutionsFailed-${rule}`, {
          alarmDescription: `harbor-replicator: an execution of rule "${rule}" ended Failed; see its tasks and their logs (GET /executions/{id}/tasks, .../tasks/{task}/log)`,
          metric: ruleMetric(CUSTOM_METRICS.executionsFailed, rule),
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    if (props.alarmAction) for (const a of this.alarms) a.addAlarmAction(props.alarmAction);

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const width = 8;
    this.dashboard.addWidgets(
      new TextWidget({ markdown: '# harbor-replicator\nQueues, functions, and replication outcomes (Powertools metrics, namespace `HarborReplicator`).', width: 24, height: 2 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Queue depth (visible messages)',
        width,
        left: props.queues.flatMap((q) => [
          q.queue.metricApproximateNumberOfMessagesVisible({ label: q.label, statistic: 'Maximum' }),
          q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: `${q.label} DLQ`, statistic: 'Maximum' }),
        ]),
      }),
      new GraphWidget({
        title: 'Messages in flight',
        width,
        left: props.queues.map((q) => q.queue.metricApproximateNumberOfMessagesNotVisible({ label: q.label, statistic: 'Maximum' })),
      }),
      new GraphWidget({
        title: 'Age of oldest message (s)',
        width,
        left: props.queues.map((q) => q.queue.metricApproximateAgeOfOldestMessage({ label: q.label, statistic: 'Maximum' })),
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Lambda errors', width, left: props.functions.map((f) => f.fn.metricErrors({ label: f.label, statistic: 'Sum' })) }),
      new GraphWidget({ title: 'Lambda duration p99 (ms)', width, left: props.functions.map((f) => f.fn.metricDuration({ label: f.label, statistic: 'p99' })) }),
      new GraphWidget({ title: 'Lambda throttles', width, left: props.functions.map((f) => f.fn.metricThrottles({ label: f.label, statistic: 'Sum' })) }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Executions',
        width,
        left: [customMetric(CUSTOM_METRICS.executionsSucceeded).with({ label: 'succeeded' }), customMetric(CUSTOM_METRICS.executionsFailed).with({ label: 'failed' })],
      }),
      new GraphWidget({
        title: 'Tasks',
        width,
        left: [customMetric(CUSTOM_METRICS.tasksSucceeded).with({ label: 'succeeded' }), customMetric(CUSTOM_METRICS.tasksFailed).with({ label: 'failed' })],
      }),
      new GraphWidget({
        title: 'Copied (MB/s, 5-minute average)',
        width,
        left: [
          new MathExpression({
            expression: 'bytes / PERIOD(bytes) / 1000000',
            usingMetrics: { bytes: customMetric(CUSTOM_METRICS.bytesCopied) },
            label: 'MB/s',
            period: Duration.minutes(5),
          }),
        ],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Failed executions per rule', width, left: [perRuleSearch(CUSTOM_METRICS.executionsFailed, 'Sum', '')] }),
      new GraphWidget({ title: 'Execution duration per rule (s)', width, left: [perRuleSearch(CUSTOM_METRICS.executionDuration, 'Maximum', '')] }),
      new GraphWidget({ title: 'Drift per rule (tags missing, different, extra)', width, left: [perRuleSearch(CUSTOM_METRICS.driftArtifacts, 'Maximum', '')] }),
    );
  }
}
