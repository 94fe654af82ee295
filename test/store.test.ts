// The TaskStore contract, one suite run against dynalite (the embedded default) and Amazon's
// DynamoDB Local, through the same @aws-sdk code: conditional transitions, sharded counters
// that stay exact under concurrency, the recount that closes an execution, listings by rule,
// status and execution, stop.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DynamoDBTaskStore, ensureTable } from '../shared/adapters/dynamodb-store.js';
import type { NewTask } from '../shared/executions/model.js';
import { startDynamoDBLocal, type DynamoDBLocal } from './support/dynamodb-local.js';

const task = (i: number, status?: NewTask['status']): NewTask => ({
  operation: 'copy',
  source: { registry: 'src', repository: `library/app${i % 7}`, tags: [`v${i}`] },
  destination: { registry: 'dst', repository: `mirror/app${i % 7}`, tags: [`v${i}`] },
  digest: `sha256:${String(i).padStart(64, '0')}`,
  ...(status ? { status } : {}),
});

interface Backend {
  name: string;
  start(): Promise<{ client: DynamoDBClient; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'dynalite',
    async start() {
      const server = dynalite({ createTableMs: 0 });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const client = new DynamoDBClient({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: 'local',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      });
      return { client, stop: () => new Promise<void>((r) => server.close(() => r())) };
    },
  },
  {
    name: 'DynamoDB Local',
    async start() {
      let local: DynamoDBLocal | undefined = await startDynamoDBLocal();
      const client = new DynamoDBClient({ endpoint: local.endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      return {
        client,
        stop: async () => {
          await local?.stop();
          local = undefined;
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`TaskStore on ${backend.name}`, () => {
    let client: DynamoDBClient;
    let stopBackend: () => Promise<void>;
    let store: DynamoDBTaskStore;

    before(async () => {
      const b = await backend.start();
      client = b.client;
      stopBackend = b.stop;
      await ensureTable(client, 'replicator-test');
      await ensureTable(client, 'replicator-test'); // idempotent
      store = new DynamoDBTaskStore(client, 'replicator-test');
    });
    after(async () => {
      client?.destroy();
      await stopBackend?.();
    });

    it('numbers executions in order and reads them back InProgress until planned', async () => {
      const a = await store.createExecution({ rule: 'r1', trigger: 'manual' });
      const b = await store.createExecution({ rule: 'r1', trigger: 'scheduled' });
      assert.equal(Number(b.id), Number(a.id) + 1);
      const got = await store.getExecution(a.id);
      assert.equal(got?.status, 'InProgress');
      assert.equal(got?.planned, false);
      assert.equal(await store.getExecution('999999'), undefined);
    });

    it('moves tasks by conditional transitions: a second claim fails and nothing counts twice', async () => {
      const e = await store.createExecution({ rule: 'r2', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2), task(3, 'Success')]);
      await store.finishPlanning(e.id, 3);
      assert.deepEqual(pick((await store.getExecution(e.id))!.counts), { total: 3, pending: 2, running: 0, succeed: 1, failed: 0, stopped: 0 });

      assert.ok(await store.transitionTask(e.id, 1, ['Pending'], 'Running', { countAttempt: true }));
      assert.equal(await store.transitionTask(e.id, 1, ['Pending'], 'Running', { countAttempt: true }), undefined, 'already claimed');
      assert.ok(await store.transitionTask(e.id, 1, ['Running'], 'Success', { bytes: 42 }));
      assert.equal(await store.transitionTask(e.id, 1, ['Pending', 'Running'], 'Running'), undefined, 'a redelivered finished task is not run again');
      const t1 = await store.getTask(e.id, 1);
      assert.equal(t1?.status, 'Success');
      assert.equal(t1?.attempts, 1);
      assert.equal(t1?.bytes, 42);
      assert.ok(t1?.endTime);
      assert.equal(await store.transitionTask(e.id, 42, ['Pending'], 'Running'), undefined, 'no such task');

      await store.transitionTask(e.id, 2, ['Pending'], 'Running', { countAttempt: true });
      await store.transitionTask(e.id, 2, ['Running'], 'Error', { statusText: 'MANIFEST_UNKNOWN: gone' });
      const settled = await store.settleExecution(e.id);
      assert.equal(settled?.status, 'Failed');
      assert.deepEqual(pick(settled!.counts), { total: 3, pending: 0, running: 0, succeed: 2, failed: 1, stopped: 0 });
      assert.ok(settled?.endTime);
    });

    it('takes over a running task only after its lease expired', async () => {
      const e = await store.createExecution({ rule: 'r3', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1)]);
      const now = Date.now();
      assert.ok(await store.transitionTask(e.id, 1, ['Pending'], 'Running', { leaseUntil: now + 60_000 }));
      assert.equal(await store.transitionTask(e.id, 1, ['Pending'], 'Running', { expiredLeaseBefore: now }), undefined, 'lease still valid');
      await store.renewLease(e.id, 1, now - 1);
      assert.ok(await store.transitionTask(e.id, 1, ['Pending'], 'Running', { expiredLeaseBefore: now, countAttempt: true }), 'taken over');
      const counts = (await store.getExecution(e.id))!.counts;
      assert.equal(counts.running, 1, 'a take-over does not count the task twice');
    });

    it('keeps counters exact under concurrent transitions (sharded), and the execution closes by recount', async () => {
      const e = await store.createExecution({ rule: 'r4', trigger: 'manual' });
      const n = 300;
      for (let i = 0; i < n; i += 100) await store.addTasks(e.id, i + 1, Array.from({ length: 100 }, (_, k) => task(i + k + 1)));
      await store.finishPlanning(e.id, n);
      await Promise.all(
        Array.from({ length: n }, async (_, k) => {
          const id = k + 1;
          await store.transitionTask(e.id, id, ['Pending'], 'Running', { countAttempt: true });
          await store.transitionTask(e.id, id, ['Running'], id % 10 === 0 ? 'Error' : 'Success');
          await store.settleExecution(e.id);
        }),
      );
      const final = await store.getExecution(e.id);
      assert.equal(final?.status, 'Failed');
      assert.deepEqual(pick(final!.counts), { total: n, pending: 0, running: 0, succeed: 270, failed: 30, stopped: 0 });
    });

    it('a crash between a task update and its counter is repaired by a recount', async () => {
      const e = await store.createExecution({ rule: 'r5', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      await store.finishPlanning(e.id, 2);
      await store.transitionTask(e.id, 1, ['Pending'], 'Running');
      await store.transitionTask(e.id, 1, ['Running'], 'Success');
      // Task 2 finishes, but the process dies before its counter moves: write the task alone.
      const doc = DynamoDBDocumentClient.from(client);
      await doc.send(
        new UpdateCommand({
          TableName: 'replicator-test',
          Key: { PK: `EXEC#${e.id}`, SK: 'TASK#000000002' },
          UpdateExpression: 'SET #s = :s, GSI3PK = :g',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':s': 'Success', ':g': `EXEC#${e.id}#Success` },
        }),
      );
      assert.equal((await store.settleExecution(e.id))?.status, 'InProgress', 'the counters still say one is pending');
      assert.deepEqual(pick(await store.reconcileCounts(e.id)), { total: 2, pending: 0, running: 0, succeed: 2, failed: 0, stopped: 0 });
      assert.equal((await store.getExecution(e.id))?.counts.pending, 0, 'counters set to the recount');
      const repaired = await store.settleExecution(e.id);
      assert.equal(repaired?.status, 'Succeed');
      assert.deepEqual(pick(repaired!.counts), { total: 2, pending: 0, running: 0, succeed: 2, failed: 0, stopped: 0 });
    });

    it('lists tasks by execution and by status, page by page, without scans', async () => {
      const e = await store.createExecution({ rule: 'r6', trigger: 'manual' });
      await store.addTasks(e.id, 1, Array.from({ length: 30 }, (_, k) => task(k + 1, k < 5 ? 'Error' : undefined)));
      const all: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listTasks(e.id, { limit: 7, cursor });
        all.push(...page.items.map((t) => t.id));
        cursor = page.cursor;
      } while (cursor);
      assert.deepEqual(all, Array.from({ length: 30 }, (_, k) => k + 1));
      const failed = await store.listTasks(e.id, { status: 'Error', limit: 100 });
      assert.deepEqual(failed.items.map((t) => t.id).sort((a, b) => a - b), [1, 2, 3, 4, 5]);
    });

    it('lists executions newest first, by rule and status; finds the active ones', async () => {
      const rule = `list-${backend.name.replace(/\W/g, '')}`;
      const first = await store.createExecution({ rule, trigger: 'manual' });
      await store.finishPlanning(first.id, 0);
      const second = await store.createExecution({ rule, trigger: 'scheduled' });
      const byRule = await store.listExecutions({ rule });
      assert.deepEqual(byRule.items.map((x) => x.id), [second.id, first.id]);
      assert.equal(byRule.items[1]!.status, 'Succeed', 'an execution of no task succeeds');
      const active = await store.activeExecutions(rule);
      assert.deepEqual(active.map((x) => x.id), [second.id]);
      const succeeded = await store.listExecutions({ rule, status: 'Succeed' });
      assert.deepEqual(succeeded.items.map((x) => x.id), [first.id]);
      const page1 = await store.listExecutions({ limit: 1 });
      assert.equal(page1.items.length, 1);
      assert.ok(page1.cursor);
      const page2 = await store.listExecutions({ limit: 1, cursor: page1.cursor });
      assert.notEqual(page2.items[0]!.id, page1.items[0]!.id);
    });

    it('stop: pending tasks become Stopped and the execution ends Stopped', async () => {
      const e = await store.createExecution({ rule: 'r7', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2), task(3)]);
      await store.finishPlanning(e.id, 3);
      await store.transitionTask(e.id, 1, ['Pending'], 'Running');
      await store.transitionTask(e.id, 1, ['Running'], 'Success');
      await store.requestStop(e.id);
      const stopped = await store.getExecution(e.id);
      assert.equal(stopped?.status, 'Stopped');
      assert.equal(stopped?.stopRequested, true);
      assert.deepEqual(pick(stopped!.counts), { total: 3, pending: 0, running: 0, succeed: 1, failed: 0, stopped: 2 });
    });

    it('a planning failure fails the execution with its reason; a skipped run is recorded as such', async () => {
      const e = await store.createExecution({ rule: 'r8', trigger: 'manual' });
      await store.finishPlanning(e.id, 0, 'planning failed: UNAUTHORIZED: token service rejected user "x"');
      const failed = await store.getExecution(e.id);
      assert.equal(failed?.status, 'Failed');
      assert.match(failed?.statusText ?? '', /planning failed/);
      const skipped = await store.createFinishedExecution({ rule: 'r8', trigger: 'scheduled', status: 'Failed', statusText: 'active replication still in progress' });
      assert.equal((await store.getExecution(skipped.id))?.statusText, 'active replication still in progress');
      assert.deepEqual(await store.activeExecutions('r8'), []);
    });
    it('retention: finished executions, their tasks and counters get a TTL; open ones and checkpoints are kept until then', async () => {
      const now = Date.parse('2026-11-23T00:00:00Z');
      const finished: string[] = [];
      const kept = new DynamoDBTaskStore(client, 'replicator-test', { retentionSeconds: 90 * 86_400, now: () => now, onFinished: (e) => finished.push(e.id) });
      const e = await kept.createExecution({ rule: 'r9', trigger: 'manual' });
      await kept.addTasks(e.id, 1, [task(1), task(2, 'Success')]);
      await kept.finishPlanning(e.id, 2);
      const doc = DynamoDBDocumentClient.from(client);
      const item = async (sk: string) => (await doc.send(new GetCommand({ TableName: 'replicator-test', Key: { PK: `EXEC#${e.id}`, SK: sk }, ConsistentRead: true }))).Item;
      const expected = now / 1000 + 90 * 86_400;
      assert.equal((await item('META'))?.ttl, undefined, 'an open execution does not expire');
      assert.equal((await item('TASK#000000002'))?.ttl, expected, 'a task born final expires with the retention');

      const checkpoint = [{ repository: 'mirror/app1', digest: `sha256:${'a'.repeat(64)}`, location: 'http://dst/v2/mirror/app1/blobs/uploads/u1?_state=x', offset: 1024 }];
      await kept.transitionTask(e.id, 1, ['Pending'], 'Running', { countAttempt: true });
      await kept.transitionTask(e.id, 1, ['Running'], 'Pending', { statusText: 'continuing', checkpoint });
      assert.deepEqual((await kept.getTask(e.id, 1))?.checkpoint, checkpoint, 'a handed-over task carries its open uploads');
      assert.equal((await item('TASK#000000001'))?.ttl, undefined);
      await kept.transitionTask(e.id, 1, ['Pending'], 'Running');
      await kept.transitionTask(e.id, 1, ['Running'], 'Success');
      assert.equal((await kept.getTask(e.id, 1))?.checkpoint, undefined, 'a final task drops its checkpoint');
      assert.equal((await item('TASK#000000001'))?.ttl, expected);

      const settled = await kept.settleExecution(e.id);
      assert.equal(settled?.status, 'Succeed');
      assert.equal((await item('META'))?.ttl, expected, 'the finished execution expires');
      const shards = await doc.send(new QueryCommand({ TableName: 'replicator-test', KeyConditionExpression: 'PK = :pk AND begins_with(SK, :c)', ExpressionAttributeValues: { ':pk': `EXEC#${e.id}`, ':c': 'COUNT#' } }));
      assert.ok((shards.Items ?? []).length > 0 && (shards.Items ?? []).every((i) => i.ttl === expected), 'its counter shards expire too');
      await kept.settleExecution(e.id);
      assert.deepEqual(finished, [e.id], 'onFinished is called once, by the settle that closed it');
    });
  });
}

function pick(c: { total: number; pending: number; running: number; succeed: number; failed: number; stopped: number }) {
  return { total: c.total, pending: c.pending, running: c.running, succeed: c.succeed, failed: c.failed, stopped: c.stopped };
}
