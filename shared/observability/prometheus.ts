import { Counter, Gauge, Registry } from 'prom-client';
import type { Counters } from './telemetry.js';

/**
 * Prometheus metrics of a `serve` process (`/metrics`): webhook requests by result, tasks and
 * executions by final status, bytes copied, and executions in progress (read at scrape time).
 */
export class PrometheusCounters implements Counters {
  readonly registry = new Registry();
  private readonly webhooks = new Counter({ name: 'harbor_replicator_webhook_requests_total', help: 'Harbor webhook requests by result', labelNames: ['result'], registers: [this.registry] });
  private readonly tasks = new Counter({ name: 'harbor_replicator_tasks_total', help: 'Tasks finished by this process, by status', labelNames: ['status'], registers: [this.registry] });
  private readonly executions = new Counter({ name: 'harbor_replicator_executions_total', help: 'Executions finished, by status', labelNames: ['status'], registers: [this.registry] });
  private readonly repairs = new Counter({ name: 'harbor_replicator_sweeper_repairs_total', help: 'Repairs of the sweeper, by kind', labelNames: ['kind'], registers: [this.registry] });
  private readonly bytes = new Counter({ name: 'harbor_replicator_bytes_copied_total', help: 'Bytes uploaded to destinations', registers: [this.registry] });

  constructor(inProgress: () => Promise<number>) {
    new Gauge({
      name: 'harbor_replicator_executions_in_progress',
      help: 'Executions in progress',
      registers: [this.registry],
      async collect() {
        this.set(await inProgress());
      },
    });
  }

  webhook(result: string): void {
    this.webhooks.inc({ result });
  }

  taskFinished(status: string, bytes: number): void {
    this.tasks.inc({ status });
    if (bytes > 0) this.bytes.inc(bytes);
  }

  executionFinished(status: string): void {
    this.executions.inc({ status });
  }

  sweeperRepair(kind: string): void {
    this.repairs.inc({ kind });
  }

  /** The text exposition format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
