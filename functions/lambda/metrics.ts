import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Counters } from '../../shared/observability/telemetry.js';

/**
 * The engine's counters as CloudWatch metrics (Powertools Metrics, embedded metric format):
 * the names the stack's alarms and dashboard read (namespace HarborReplicator, dimension
 * service). Published at the end of each invocation.
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

  executionFinished(status: string): void {
    const name = status === 'Succeed' ? 'ExecutionsSucceeded' : status === 'Failed' ? 'ExecutionsFailed' : 'ExecutionsStopped';
    this.metrics.addMetric(name, MetricUnit.Count, 1);
  }

  sweeperRepair(kind: string): void {
    // One metric per kind (a dimension would multiply the namespace's metrics).
    this.metrics.addMetric(`SweeperRepairs_${kind}`, MetricUnit.Count, 1);
  }
}
