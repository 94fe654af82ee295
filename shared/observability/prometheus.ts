import { Counter, Gauge, Registry } from 'prom-client';
import { FINAL_EXECUTION_STATUSES, type Counters, type RuleFigures } from './telemetry.js';

/** Rule figures read once per scrape, shared by the three gauges that show them. */
const FIGURES_FRESH_MS = 1000;

/**
 * Prometheus metrics of a `serve` process (`/metrics`): webhook requests by result, tasks and
 * executions by final status, bytes copied, executions in progress, and per rule the last
 * ended execution's status and duration and its last drift (gauges read from the store at
 * scrape time, so they hold across restarts).
 */
export class PrometheusCounters implements Counters {
  readonly registry = new Registry();
  private readonly webhooks = new Counter({ name: 'harbor_replicator_webhook_requests_total', help: 'Harbor webhook requests by result', labelNames: ['result'], registers: [this.registry] });
  private readonly tasks = new Counter({ name: 'harbor_replicator_tasks_total', help: 'Tasks finished by this process, by status', labelNames: ['status'], registers: [this.registry] });
  private readonly executions = new Counter({ name: 'harbor_replicator_executions_total', help: 'Executions finished, by status', labelNames: ['status'], registers: [this.registry] });
  private readonly repairs = new Counter({ name: 'harbor_replicator_sweeper_repairs_total', help: 'Repairs of the sweeper, by kind', labelNames: ['kind'], registers: [this.registry] });
  private readonly bytes = new Counter({ name: 'harbor_replicator_bytes_copied_total', help: 'Bytes uploaded to destinations', registers: [this.registry] });

  constructor(inProgress: () => Promise<number>, ruleFigures?: () => Promise<RuleFigures[]>) {
    new Gauge({
      name: 'harbor_replicator_executions_in_progress',
      help: 'Executions in progress',
      registers: [this.registry],
      async collect() {
        this.set(await inProgress());
      },
    });
    if (ruleFigures) this.ruleGauges(ruleFigures);
  }

  /** The per-rule gauges (issue 16): each scrape reads the figures once, fresh, and sets them whole. */
  private ruleGauges(read: () => Promise<RuleFigures[]>): void {
    let cached: { at: number; figures: Promise<RuleFigures[]> } | undefined;
    const figures = () => {
      if (!cached || Date.now() - cached.at > FIGURES_FRESH_MS) cached = { at: Date.now(), figures: read() };
      return cached.figures;
    };
    new Gauge({
      name: 'harbor_replicator_execution_status',
      help: "Per rule, its last ended execution's status: 1 for that status, 0 for the others (Succeed, Failed, Stopped)",
      labelNames: ['rule', 'status'],
      registers: [this.registry],
      async collect() {
        this.reset(); // a rule deleted since the last scrape disappears
        for (const f of await figures()) {
          if (!f.last) continue;
          for (const status of FINAL_EXECUTION_STATUSES) this.set({ rule: f.rule, status }, status === f.last.status ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'harbor_replicator_execution_duration_seconds',
      help: "Per rule, how long its last ended execution took (start to end)",
      labelNames: ['rule'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const f of await figures()) if (f.last) this.set({ rule: f.rule }, f.last.seconds);
      },
    });
    new Gauge({
      name: 'harbor_replicator_drift_artifacts',
      help: "Per rule, tags out of step at the destination as its last reconcile found them, by kind (missing, different, extra)",
      labelNames: ['rule', 'kind'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const f of await figures()) {
          if (!f.drift) continue;
          for (const kind of ['missing', 'different', 'extra'] as const) this.set({ rule: f.rule, kind }, f.drift[kind]);
        }
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
