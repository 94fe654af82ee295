// The Lambdas' per-rule figures as CloudWatch sees them: the embedded metric format records
// that Powertools Metrics prints (captured from the console), each with the dimensions the
// stack's per-rule alarms and dashboard read (service and rule, and kind for drift); and the
// DynamoDB store reporting a drift only when it kept it (dynalite).
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { ensureTable, DynamoDBTaskStore } from '../shared/adapters/aws/dynamodb-store.js';
import type { DriftReport } from '../shared/executions/model.js';

interface Emf {
  _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [key: string]: unknown;
}

describe('Lambda metrics: per-rule figures in the embedded metric format', () => {
  const printed: string[] = [];
  const saved = { log: console.log, dev: process.env.POWERTOOLS_DEV, disabled: process.env.POWERTOOLS_METRICS_DISABLED };
  let metrics: import('@aws-lambda-powertools/metrics').Metrics;
  let counters: import('../functions/lambda/metrics.js').CloudWatchCounters;

  before(async () => {
    // Powertools prints EMF with the global console in dev mode; enabled explicitly.
    process.env.POWERTOOLS_DEV = 'true';
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    console.log = (...args: unknown[]) => void printed.push(args.map(String).join(' '));
    const { Metrics } = await import('@aws-lambda-powertools/metrics');
    const { CloudWatchCounters } = await import('../functions/lambda/metrics.js');
    metrics = new Metrics({ namespace: 'HarborReplicator', serviceName: 'harbor-replicator' });
    counters = new CloudWatchCounters(metrics);
  });
  after(() => {
    console.log = saved.log;
    for (const [k, v] of [['POWERTOOLS_DEV', saved.dev], ['POWERTOOLS_METRICS_DISABLED', saved.disabled]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const records = () => printed.splice(0).map((l) => JSON.parse(l) as Emf);
  /** Each record as `name{dim=value,...} value unit`. */
  const lines = (rs: Emf[]) =>
    rs.flatMap((r) =>
      r._aws.CloudWatchMetrics.flatMap((d) =>
        d.Metrics.map((m) => {
          assert.equal(d.Namespace, 'HarborReplicator');
          const dims = d.Dimensions.flat().sort().map((k) => `${k}=${String(r[k])}`).join(',');
          return `${m.Name}{${dims}} ${String(r[m.Name])} ${m.Unit}`;
        }),
      ),
    );

  it('an execution that ended: its outcome and duration per rule, published at once; the aggregate with the invocation', () => {
    counters.executionFinished('Failed', { rule: 'nightly', startTime: '2026-11-23T02:00:00.000Z', endTime: '2026-11-23T02:01:30.500Z' });
    assert.deepEqual(lines(records()), [
      'ExecutionsFailed{rule=nightly,service=harbor-replicator} 1 Count',
      'ExecutionDuration{rule=nightly,service=harbor-replicator} 90.5 Seconds',
    ]);
    counters.executionFinished('Succeed', { rule: 'on-push', startTime: '2026-11-23T02:00:00.000Z', endTime: '2026-11-23T02:00:02.000Z' });
    counters.executionFinished('Stopped', { rule: 'on-push', startTime: '2026-11-23T02:00:00.000Z' }); // no end time: no duration
    assert.deepEqual(lines(records()), [
      'ExecutionsSucceeded{rule=on-push,service=harbor-replicator} 1 Count',
      'ExecutionDuration{rule=on-push,service=harbor-replicator} 2 Seconds',
      'ExecutionsStopped{rule=on-push,service=harbor-replicator} 1 Count',
    ]);
    metrics.publishStoredMetrics();
    const aggregate = lines(records());
    assert.ok(aggregate.includes('ExecutionsFailed{service=harbor-replicator} 1 Count'), aggregate.join('\n'));
    assert.ok(aggregate.includes('ExecutionsSucceeded{service=harbor-replicator} 1 Count'));
    assert.ok(aggregate.every((l) => !l.includes('rule=')), 'the invocation record has no rule dimension');
  });

  it('a drift measured: one figure per kind, with rule and kind dimensions', () => {
    counters.driftMeasured('nightly', { missing: 2, different: 0, extra: 7 });
    assert.deepEqual(lines(records()), [
      'DriftArtifacts{kind=missing,rule=nightly,service=harbor-replicator} 2 Count',
      'DriftArtifacts{kind=different,rule=nightly,service=harbor-replicator} 0 Count',
      'DriftArtifacts{kind=extra,rule=nightly,service=harbor-replicator} 7 Count',
    ]);
  });
});

describe('DynamoDB store: a drift is reported for metrics when it is kept', () => {
  let db: ReturnType<typeof dynalite>;
  let client: DynamoDBClient;

  before(async () => {
    db = dynalite({ createTableMs: 0 });
    await new Promise<void>((ok) => db.listen(0, '127.0.0.1', () => ok()));
    client = new DynamoDBClient({ endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await ensureTable(client, 'metrics-test');
  });
  after(async () => {
    client?.destroy();
    await new Promise<void>((ok) => (db ? db.close(() => ok()) : ok()));
  });

  it('onDrift for a report kept as the rule\'s last; not for an earlier one that a later already replaced', async () => {
    const seen: Array<[string, number]> = [];
    const store = new DynamoDBTaskStore(client, 'metrics-test', { onDrift: (r) => seen.push([r.rule, r.counts.missing]) });
    const report = (takenAt: string, missing: number): DriftReport => ({
      rule: 'nightly',
      execution: '1',
      takenAt,
      counts: { missing, different: 0, extra: 0, inSync: 1 },
      extrasChecked: false,
      items: [],
      truncated: false,
    });
    await store.recordDrift(report('2026-11-23T03:30:00.000Z', 1));
    await store.recordDrift(report('2026-11-23T04:30:00.000Z', 2));
    await store.recordDrift(report('2026-11-23T03:00:00.000Z', 9)); // a slower reconcile that started earlier
    assert.deepEqual(seen, [['nightly', 1], ['nightly', 2]]);
  });
});
