import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Counters, DriftFigures, FinishedExecution } from '../../shared/observability/telemetry.js';

/**
 * The engine's counters as CloudWatch metrics (Powertools Metrics, embedded metric format):
 * the names the stack's alarms and dashboard read (namespace HarborReplicator, dimension
 * service), published at the end of each invocation; and per rule (dimension `rule` too) what
 * `serve`'s gauges show: `ExecutionsSucceeded|Failed|Stopped` (1 per execution that ended so),
 * `ExecutionDuration` (seconds, start to end), `DriftArtifacts` (dimension `kind` too: missing,
 * different, extra), each published at once as its own EMF record (its dimensions are not the
 * invocation's). infra/monitoring.ts alarms on the per-rule ExecutionsFailed of each config rule.
 */
export class CloudWatchCounters implements Counters {
  constructor(private readonly metrics: Metrics) {}

  webhook(result: string): void {
    const name = result === 'accepted' ? 'WebhooksAccepted' : ['duplicate', 'no_match', 'ignored'].includes(result) ? 'WebhooksIgnored' : 'WebhooksRejected';
    this.metrics.addMetric(name, MetricUnit.Count, 1);
  }

  taskFinished(status: string, bytes: number): void {
    const name = status === 'Success' ? 'TasksSucceeded' : status === 'Error' ? 'TasksFailed' : status === 'Stopped' ? 'TasksStopped' : undefined;
    if (name) this.metrics.addMetric(name, MetricUnit.Count, 1);
    if (bytes > 0) this.metrics.addMetric('BytesCopied', MetricUnit.Bytes, bytes);
  }

  executionFinished(status: string, execution?: FinishedExecution): void {
    const name = status === 'Succeed' ? 'ExecutionsSucceeded' : status === 'Failed' ? 'ExecutionsFailed' : 'ExecutionsStopped';
    this.metrics.addMetric(name, MetricUnit.Count, 1);
    if (!execution) return;
    this.perRule({ rule: execution.rule }, name, MetricUnit.Count, 1);
    const seconds = execution.endTime ? (Date.parse(execution.endTime) - Date.parse(execution.startTime)) / 1000 : NaN;
    if (Number.isFinite(seconds)) this.perRule({ rule: execution.rule }, 'ExecutionDuration', MetricUnit.Seconds, Math.max(0, seconds));
  }

  driftMeasured(rule: string, drift: DriftFigures): void {
    for (const kind of ['missing', 'different', 'extra'] as const) this.perRule({ rule, kind }, 'DriftArtifacts', MetricUnit.Count, drift[kind]);
  }

  sweeperRepair(kind: string): void {
    // One metric per kind (a dimension would multiply the namespace's metrics).
    this.metrics.addMetric(`SweeperRepairs_${kind}`, MetricUnit.Count, 1);
  }

  /** One figure with these dimensions besides `service`, published now. */
  private perRule(dimensions: Record<string, string>, name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): void {
    const single = this.metrics.singleMetric();
    single.addDimensions(dimensions);
    single.addMetric(name, unit, value);
  }
}
