// The TaskStore contract, one suite run against three backends: the DynamoDB store on dynalite
// and on Amazon's DynamoDB Local (through the same @aws-sdk code), and the embedded SQLite store.
// Conditional moves (claims, lease takeover, repeated moves), counters that stay exact under
// concurrency, the recount that alone closes an execution, planning leases, listings by rule,
// status and execution (and cursors that are not ours), stop. Tests that tamper with a backend's
// own records stay with that backend: a lost DynamoDB counter write and retention TTL; SQLite's
// move + counters in one transaction, proven by a failure injected between the two writes.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import Sqlite, { type Database } from 'better-sqlite3';
import dynalite from 'dynalite';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBServiceStore } from '../shared/adapters/aws/dynamodb-service-store.js';
import { DynamoDBTaskStore, ensureTable } from '../shared/adapters/aws/dynamodb-store.js';
import { encodeCursor } from '../shared/adapters/listing-cursor.js';
import { openStateDatabase, SCHEMA_VERSION } from '../shared/adapters/local/sqlite-database.js';
import { SqliteServiceStore } from '../shared/adapters/local/sqlite-service-store.js';
import { SqliteTaskStore } from '../shared/adapters/local/sqlite-store.js';
import type { Execution, NewTask } from '../shared/executions/model.js';
import { taskMove, type TaskEvent } from '../shared/executions/transitions.js';
import { TASK_LOG_MAX_BYTES, TASK_LOG_MAX_LINES } from '../shared/executions/task-log.js';
import { EARLIER_RUN_SLACK_S } from '../shared/adapters/aws/dynamodb-task-log.js';
import type { DeliveryLog, TaskStore } from '../shared/executions/ports.js';
import type { ConfigStore } from '../shared/rules/ports.js';
import { startDynamoDBLocal, type DynamoDBLocal } from './support/dynamodb-local.js';

const task = (i: number, status?: NewTask['status']): NewTask => ({
  operation: 'copy',
  source: { registry: 'src', repository: `library/app${i % 7}`, tags: [`v${i}`] },
  destination: { registry: 'dst', repository: `mirror/app${i % 7}`, tags: [`v${i}`] },
  digest: `sha256:${String(i).padStart(64, '0')}`,
  ...(status ? { status } : {}),
});

type StoreOptions = { now?: () => number; onFinished?: (e: Execution) => void };

/** A backend started for the suite: its stores, and its own records for the tests that tamper with them. */
interface Harness {
  store: TaskStore;
  service: DeliveryLog & ConfigStore;
  /** Another store on the same state, with a clock or a close callback. */
  another(opts: StoreOptions): TaskStore;
  dynamo?: { client: DynamoDBClient; table: string };
  /** A second connection to the SQLite file (what an operator's sqlite3 would be). */
  sqlite?: { file: string; tamper: Database };
  stop(): Promise<void>;
}

interface Backend {
  name: string;
  kind: 'dynamodb' | 'sqlite';
  start(): Promise<Harness>;
}

const TABLE = 'replicator-test';

/** The DynamoDB store on a client, the table created (twice: ensureTable is idempotent). */
async function dynamoHarness(client: DynamoDBClient, stop: () => Promise<void>): Promise<Harness> {
  await ensureTable(client, TABLE);
  await ensureTable(client, TABLE);
  return {
    store: new DynamoDBTaskStore(client, TABLE),
    service: new DynamoDBServiceStore(client, TABLE),
    another: (opts) => new DynamoDBTaskStore(client, TABLE, opts),
    dynamo: { client, table: TABLE },
    stop: async () => {
      client.destroy();
      await stop();
    },
  };
}

const backends: Backend[] = [
  {
    name: 'dynalite',
    kind: 'dynamodb',
    async start() {
      const server = dynalite({ createTableMs: 0 });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const client = new DynamoDBClient({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: 'local',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      });
      return dynamoHarness(client, () => new Promise<void>((r) => server.close(() => r())));
    },
  },
  {
    name: 'DynamoDB Local',
    kind: 'dynamodb',
    async start() {
      let local: DynamoDBLocal | undefined = await startDynamoDBLocal();
      const client = new DynamoDBClient({ endpoint: local.endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      return dynamoHarness(client, async () => {
        await local?.stop();
        local = undefined;
      });
    },
  },
  {
    name: 'SQLite',
    kind: 'sqlite',
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'hr-store-'));
      const file = join(dir, 'state.db');
      const db = openStateDatabase(file);
      const tamper = new Sqlite(file);
      return {
        store: new SqliteTaskStore(db),
        service: new SqliteServiceStore(db),
        another: (opts) => new SqliteTaskStore(db, opts),
        sqlite: { file, tamper },
        stop: async () => {
          tamper.close();
          db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`TaskStore on ${backend.name}`, () => {
    let h: Harness;
    let store: TaskStore;

    before(async () => {
      h = await backend.start();
      store = h.store;
    });
    /** A test of one backend's own records (the others have their own equivalents below). */
    const itOn = (kind: Backend['kind'], name: string, fn: () => Promise<void>) => {
      if (backend.kind === kind) it(name, fn);
    };
    after(async () => {
      await h?.stop();
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

    it("a task's referrers and accessories are kept; referrers pushed are recorded per destination subject, added to, listed and forgotten", async () => {
      const e = await store.createExecution({ rule: 'r-ref', trigger: 'manual' });
      const accessories = [{ digest: `sha256:${'c'.repeat(64)}`, type: 'signature.cosign' }];
      await store.addTasks(e.id, 1, [{ ...task(1), accessories }]);
      await claim(e.id, 1);
      const t = (await store.getTask(e.id, 1))!;
      assert.deepEqual(t.accessories, accessories);
      const referrers = { copied: 2, in_sync: 1, failed: 0 };
      const referrerDigests = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`];
      const moved = await store.applyMove(e.id, 1, taskMove({ kind: 'succeed', token: t.leaseToken!, revision: t.revision, now: Date.now(), bytes: 1, text: '', referrers, referrerDigests }));
      assert.ok(moved.applied);
      const done = (await store.getTask(e.id, 1))!;
      assert.deepEqual([done.referrers, done.referrerDigests], [referrers, referrerDigests]);

      const target = { host: 'reg.example:5000', repository: 'mirror/app', subject: `sha256:${'d'.repeat(64)}` };
      const other = { ...target, repository: 'mirror/other' };
      await store.recordReferrers(target, [{ digest: referrerDigests[0]!, subject: target.subject, depth: 0, tag: 'sha256-x.sig' }]);
      await store.recordReferrers(target, [{ digest: referrerDigests[1]!, subject: referrerDigests[0]!, depth: 1 }]);
      await store.recordReferrers(other, [{ digest: `sha256:${'e'.repeat(64)}`, subject: other.subject, depth: 0 }]);
      const listed = await store.recordedReferrers(target);
      assert.deepEqual(listed.map((r) => [r.digest, r.subject, r.depth, r.tag]).sort(), [
        [referrerDigests[0], target.subject, 0, 'sha256-x.sig'],
        [referrerDigests[1], referrerDigests[0], 1, undefined],
      ]);
      await store.forgetReferrers(target, [referrerDigests[0]!]);
      assert.deepEqual((await store.recordedReferrers(target)).map((r) => r.digest), [referrerDigests[1]]);
      assert.equal((await store.recordedReferrers(other)).length, 1, 'another repository: its own record');
    });

    const claim = (eid: string, id: number, token = 'w1', now = Date.now(), leaseMs = 60_000) =>
      store.applyMove(eid, id, taskMove({ kind: 'claim', token, now, leaseMs, continuation: false }));
    /** The owner's next move, with the token and revision the task has now. */
    const finish = async (eid: string, id: number, how: 'succeed' | 'fail' | 'handover', s: TaskStore = store) => {
      const t = (await s.getTask(eid, id))!;
      const own = { token: t.leaseToken!, revision: t.revision, now: Date.now() };
      const event: TaskEvent =
        how === 'succeed'
          ? { kind: 'succeed', ...own, bytes: 42, text: '' }
          : how === 'fail'
            ? { kind: 'fail', ...own, error: { code: 'MANIFEST_UNKNOWN', message: 'gone' }, text: 'MANIFEST_UNKNOWN: gone' }
            : { kind: 'handover', ...own, checkpoint: [], text: 'continuing' };
      return s.applyMove(eid, id, taskMove(event));
    };

    it('moves tasks by conditional moves: a second claim fails and nothing counts twice', async () => {
      const e = await store.createExecution({ rule: 'r2', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2), task(3, 'Success')]);
      await store.finishPlanning(e.id, 3);
      assert.deepEqual(pick((await store.getExecution(e.id))!.counts), { total: 3, pending: 2, running: 0, succeed: 1, failed: 0, stopped: 0 });

      const first = await claim(e.id, 1);
      assert.ok(first.applied && !first.repeated && first.from === 'Pending' && first.task.status === 'Running');
      assert.equal((await claim(e.id, 1, 'w2')).applied, false, 'already claimed');
      assert.ok((await finish(e.id, 1, 'succeed')).applied);
      assert.equal((await claim(e.id, 1, 'w3')).applied, false, 'a redelivered finished task is not run again');
      const t1 = await store.getTask(e.id, 1);
      assert.equal(t1?.status, 'Success');
      assert.equal(t1?.attempts, 1);
      assert.equal(t1?.bytes, 42);
      assert.equal(t1?.revision, 2);
      assert.equal(t1?.leaseToken, undefined);
      assert.ok(t1?.endTime);
      const none = await claim(e.id, 42);
      assert.equal(none.applied, false, 'no such task');
      assert.equal(none.task, undefined);

      await claim(e.id, 2);
      await finish(e.id, 2, 'fail');
      assert.deepEqual((await store.getTask(e.id, 2))?.error, { code: 'MANIFEST_UNKNOWN', message: 'gone' });
      const settled = await store.settleExecution(e.id);
      assert.equal(settled?.status, 'Failed');
      assert.deepEqual(pick(settled!.counts), { total: 3, pending: 0, running: 0, succeed: 2, failed: 1, stopped: 0 });
      assert.ok(settled?.endTime);
    });

    it('a move delivered twice (a retried write that had landed) is recognised and counts nothing', async () => {
      const e = await store.createExecution({ rule: 'r2b', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1)]);
      await store.finishPlanning(e.id, 1);
      const move = taskMove({ kind: 'claim', token: 'w1', now: Date.now(), leaseMs: 60_000, continuation: false });
      const once = await store.applyMove(e.id, 1, move);
      const twice = await store.applyMove(e.id, 1, move);
      assert.ok(once.applied && !once.repeated);
      assert.ok(twice.applied && twice.repeated, 'the same move again: applied before, not again');
      assert.equal((await store.getTask(e.id, 1))?.attempts, 1);
      assert.deepEqual(pick((await store.getExecution(e.id))!.counts), { total: 1, pending: 0, running: 1, succeed: 0, failed: 0, stopped: 0 });
    });

    it('takes over a running task only after its lease expired; the old owner then fails cleanly', async () => {
      const e = await store.createExecution({ rule: 'r3', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1)]);
      const now = Date.now();
      assert.ok((await claim(e.id, 1, 'old', now)).applied);
      assert.equal((await claim(e.id, 1, 'new', now)).applied, false, 'lease still valid');
      assert.ok(await store.heartbeat(e.id, 1, 'old', now - 1), 'its owner may renew (here: let it lapse)');
      assert.equal(await store.heartbeat(e.id, 1, 'intruder', now + 60_000), false, 'a heartbeat of another token is refused');
      const taken = await claim(e.id, 1, 'new', now);
      assert.ok(taken.applied && taken.task.leaseToken === 'new', 'taken over');
      assert.equal(taken.task.attempts, 2);
      assert.equal((await store.getExecution(e.id))!.counts.running, 1, 'a take-over does not count the task twice');
      // The old owner wakes up: every move of its fails, the task is untouched.
      const stale = await store.applyMove(e.id, 1, taskMove({ kind: 'succeed', token: 'old', revision: 1, now, bytes: 1, text: '' }));
      assert.equal(stale.applied, false);
      assert.equal(await store.heartbeat(e.id, 1, 'old', now + 60_000), false, 'its heartbeat says the lease is lost');
      assert.equal((await store.getTask(e.id, 1))?.status, 'Running');
      assert.ok((await finish(e.id, 1, 'succeed')).applied, 'the new owner finishes');
    });

    it('keeps counters exact under concurrent moves (sharded), and the execution closes by recount', async () => {
      const e = await store.createExecution({ rule: 'r4', trigger: 'manual' });
      const n = 300;
      for (let i = 0; i < n; i += 100) await store.addTasks(e.id, i + 1, Array.from({ length: 100 }, (_, k) => task(i + k + 1)));
      await store.finishPlanning(e.id, n);
      await Promise.all(
        Array.from({ length: n }, async (_, k) => {
          const id = k + 1;
          await claim(e.id, id, `w${id}`);
          await finish(e.id, id, id % 10 === 0 ? 'fail' : 'succeed');
          await store.settleExecution(e.id);
        }),
      );
      const final = await store.getExecution(e.id);
      assert.equal(final?.status, 'Failed');
      assert.deepEqual(pick(final!.counts), { total: n, pending: 0, running: 0, succeed: 270, failed: 30, stopped: 0 });
    });

    it('planning holds a lease: one planner at a time, renewed by its holder, taken after it lapses, released for the sweeper', async () => {
      const e = await store.createExecution({ rule: 'r5p', trigger: 'manual' });
      const now = Date.now();
      assert.ok(await store.leasePlanning(e.id, 'p1', now + 60_000));
      assert.equal(await store.leasePlanning(e.id, 'p2', now + 60_000), false, 'held by p1');
      assert.ok(await store.leasePlanning(e.id, 'p1', now - 1), 'its holder renews it (here: lets it lapse)');
      assert.ok(await store.leasePlanning(e.id, 'p2', now + 60_000), 'lapsed: p2 takes it');
      assert.equal((await store.getExecution(e.id))?.planLeaseUntil, now + 60_000);
      assert.equal(await store.releasePlanning(e.id, { countReplan: true }), 1);
      assert.equal(await store.releasePlanning(e.id, { countReplan: false }), 1, 'a release that does not count');
      assert.ok(await store.leasePlanning(e.id, 'p3', now + 60_000), 'released: anyone may take it');
      await store.finishPlanning(e.id, 0);
      assert.equal(await store.leasePlanning(e.id, 'p4', now + 60_000), false, 'planning is over');
      assert.equal((await store.getExecution(e.id))?.status, 'Succeed');
    });

    itOn('dynamodb', 'a lost or repeated counter write never closes an execution wrongly; the recount repairs the counters', async () => {
      const { client } = h.dynamo!;
      const e = await store.createExecution({ rule: 'r5', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      await store.finishPlanning(e.id, 2);
      await claim(e.id, 1);
      await finish(e.id, 1, 'succeed');
      const doc = DynamoDBDocumentClient.from(client);
      // Task 2 finishes, but its counter move is lost: write the task alone.
      await doc.send(
        new UpdateCommand({
          TableName: 'replicator-test',
          Key: { PK: `EXEC#${e.id}`, SK: 'TASK#000000002' },
          UpdateExpression: 'SET #s = :s, GSI3PK = :g',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':s': 'Success', ':g': `EXEC#${e.id}#Success` },
        }),
      );
      assert.equal((await store.settleExecution(e.id))?.status, 'InProgress', 'the counters still say one is pending: progress, not a final status');
      // A stop always settles from a recount: the same lost write on another execution, then a stop, closes it.
      const s = await store.createExecution({ rule: 'r5s', trigger: 'manual' });
      await store.addTasks(s.id, 1, [task(1)]);
      await store.finishPlanning(s.id, 1);
      await claim(s.id, 1);
      await doc.send(
        new UpdateCommand({
          TableName: 'replicator-test',
          Key: { PK: `EXEC#${s.id}`, SK: 'TASK#000000001' },
          UpdateExpression: 'SET #s = :s, GSI3PK = :g',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':s': 'Success', ':g': `EXEC#${s.id}#Success` },
        }),
      );
      assert.equal((await store.settleExecution(s.id))?.status, 'InProgress', 'the counters still say one is running');
      const stopped = await store.requestStop(s.id);
      assert.equal(stopped?.status, 'Succeed', 'the stop recounted: its one task had succeeded, nothing was left to stop');
      const fixed = await store.recount(e.id);
      assert.equal(fixed.corrected, true);
      assert.deepEqual(pick(fixed.counts), { total: 2, pending: 0, running: 0, succeed: 2, failed: 0, stopped: 0 });
      assert.equal((await store.recount(e.id)).corrected, false, 'in step now');
      const repaired = await store.settleExecution(e.id);
      assert.equal(repaired?.status, 'Succeed');
      assert.deepEqual(pick(repaired!.counts), { total: 2, pending: 0, running: 0, succeed: 2, failed: 0, stopped: 0 });

      // The other way: a decrement counted twice says nothing is pending while a task is.
      const f = await store.createExecution({ rule: 'r5b', trigger: 'manual' });
      await store.addTasks(f.id, 1, [task(1)]);
      await store.finishPlanning(f.id, 1);
      await doc.send(
        new UpdateCommand({
          TableName: 'replicator-test',
          Key: { PK: `EXEC#${f.id}`, SK: 'COUNT#00' },
          UpdateExpression: 'ADD pending :m, succeed :p',
          ExpressionAttributeValues: { ':m': -1, ':p': 1 },
        }),
      );
      const still = await store.settleExecution(f.id);
      assert.equal(still?.status, 'InProgress', 'the recount, not the counters, decides: the task is still Pending');
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

    it('lists executions by trigger (with rule and status too); a cursor of one trigger\'s listing is not another\'s', async () => {
      const rule = `trig-${backend.name.replace(/\W/g, '')}`;
      const manual = await store.createExecution({ rule, trigger: 'manual' });
      const reconcile = await store.createExecution({ rule, trigger: 'reconcile' });
      await store.finishPlanning(reconcile.id, 0);
      const reconcile2 = await store.createExecution({ rule, trigger: 'reconcile' });
      const ids = async (q: Parameters<TaskStore['listExecutions']>[0]) => {
        // DynamoDB filters after its Limit: read every page.
        const out: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listExecutions({ ...q, cursor });
          out.push(...page.items.map((x) => x.id));
          cursor = page.cursor;
        } while (cursor);
        return out;
      };
      assert.deepEqual(await ids({ rule, trigger: 'reconcile' }), [reconcile2.id, reconcile.id]);
      assert.deepEqual(await ids({ rule, trigger: 'manual' }), [manual.id]);
      assert.deepEqual(await ids({ rule, trigger: 'reconcile', status: 'Succeed' }), [reconcile.id]);
      assert.ok((await ids({ trigger: 'reconcile' })).includes(reconcile.id));
      assert.ok(!(await ids({ trigger: 'reconcile' })).includes(manual.id));
      assert.deepEqual(await ids({ rule, trigger: 'event_based' }), []);
      if (backend.kind === 'sqlite') {
        const page = await store.listExecutions({ rule, trigger: 'reconcile', limit: 1 });
        assert.ok(page.cursor);
        await assert.rejects(store.listExecutions({ rule, trigger: 'manual', limit: 1, cursor: page.cursor }), (err: { code?: string }) => err.code === 'INVALID_CURSOR');
      }
    });

    it('keeps each rule\'s last drift: read back whole, replaced by a later one, never by an earlier one', async () => {
      const rule = `drift-${backend.name.replace(/\W/g, '')}`;
      assert.equal(await store.lastDrift(rule), undefined);
      const report = (execution: string, takenAt: string, missing: number) => ({
        rule,
        execution,
        takenAt,
        counts: { missing, different: 1, extra: 1, inSync: 7 },
        extrasChecked: true,
        items: [
          { kind: 'different' as const, repository: 'mirror/app', tag: 'latest', sourceRepository: 'library/app', sourceDigest: `sha256:${'a'.repeat(64)}`, destinationDigest: `sha256:${'b'.repeat(64)}` },
          { kind: 'extra' as const, repository: 'mirror/app', tag: 'old', destinationDigest: `sha256:${'c'.repeat(64)}`, action: 'keep' as const, reason: 'shared' },
        ],
        truncated: missing > 0,
      });
      const first = report('10', '2026-11-23T03:30:00.000Z', 0);
      await store.recordDrift(first);
      assert.deepEqual(await store.lastDrift(rule), first);
      const later = report('11', '2026-11-23T04:30:00.000Z', 3);
      await store.recordDrift(later);
      assert.deepEqual(await store.lastDrift(rule), later);
      await store.recordDrift(report('9', '2026-11-23T03:00:00.000Z', 5)); // a slower reconcile that started earlier
      assert.deepEqual(await store.lastDrift(rule), later, 'an earlier report does not replace a later one');
      assert.equal(await store.lastDrift(`${rule}-other`), undefined, 'per rule');
    });

    it('stop: pending tasks become Stopped and the execution ends Stopped, settled by the stop itself', async () => {
      const e = await store.createExecution({ rule: 'r7', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2), task(3)]);
      await store.finishPlanning(e.id, 3);
      await claim(e.id, 1);
      await finish(e.id, 1, 'succeed');
      const stopped = await store.requestStop(e.id);
      assert.equal(stopped?.status, 'Stopped');
      assert.equal(stopped?.stopRequested, true);
      assert.deepEqual(pick(stopped!.counts), { total: 3, pending: 0, running: 0, succeed: 1, failed: 0, stopped: 2 });
      assert.equal(await store.requestStop('999999'), undefined);
    });

    it('a planning failure fails the execution with its reason; the first finish wins; a skipped run is recorded as such', async () => {
      const e = await store.createExecution({ rule: 'r8', trigger: 'manual' });
      await store.finishPlanning(e.id, 0, { error: 'planning failed: UNAUTHORIZED: token service rejected user "x"' });
      await store.finishPlanning(e.id, 5); // a late second planner changes nothing
      const failed = await store.getExecution(e.id);
      assert.equal(failed?.status, 'Failed');
      assert.match(failed?.statusText ?? '', /planning failed/);
      const skipped = await store.createFinishedExecution({ rule: 'r8', trigger: 'scheduled', status: 'Failed', statusText: 'active replication still in progress' });
      assert.equal((await store.getExecution(skipped.id))?.statusText, 'active replication still in progress');
      assert.deepEqual(await store.activeExecutions('r8'), []);
    });

    itOn('dynamodb', 'retention: finished executions, their tasks and counters get a TTL; open ones and checkpoints are kept until then', async () => {
      const { client } = h.dynamo!;
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
      const claimed = await kept.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w', now, leaseMs: 60_000, continuation: false }));
      assert.ok(claimed.applied);
      await kept.applyMove(e.id, 1, taskMove({ kind: 'handover', token: 'w', revision: claimed.task.revision, now, checkpoint, text: 'continuing' }));
      assert.deepEqual((await kept.getTask(e.id, 1))?.checkpoint, checkpoint, 'a handed-over task carries its open uploads');
      assert.equal((await item('TASK#000000001'))?.ttl, undefined);
      const again = await kept.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w2', now, leaseMs: 60_000, continuation: true }));
      assert.ok(again.applied);
      await kept.applyMove(e.id, 1, taskMove({ kind: 'succeed', token: 'w2', revision: again.task.revision, now, bytes: 1, text: '' }));
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

    it('a handed-over task carries its checkpoint and drops it when it ends; onFinished is told once, by the call that closed', async () => {
      const now = Date.now();
      const finished: string[] = [];
      const s = h.another({ now: () => now, onFinished: (e) => finished.push(e.id) });
      const e = await s.createExecution({ rule: 'r10', trigger: 'manual' });
      await s.addTasks(e.id, 1, [task(1), task(2, 'Success')]);
      await s.finishPlanning(e.id, 2);
      const checkpoint = [{ repository: 'mirror/app1', digest: `sha256:${'a'.repeat(64)}`, location: 'http://dst/v2/mirror/app1/blobs/uploads/u1?_state=x', offset: 1024 }];
      const claimed = await s.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w', now, leaseMs: 60_000, continuation: false }));
      assert.ok(claimed.applied);
      const handed = await s.applyMove(e.id, 1, taskMove({ kind: 'handover', token: 'w', revision: claimed.task.revision, now, checkpoint, text: 'continuing' }));
      assert.ok(handed.applied && handed.task.status === 'Pending');
      const carried = await s.getTask(e.id, 1);
      assert.deepEqual(carried?.checkpoint, checkpoint, 'a handed-over task carries its open uploads');
      assert.equal(carried?.statusText, 'continuing');
      const again = await s.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w2', now, leaseMs: 60_000, continuation: true }));
      assert.ok(again.applied);
      assert.equal(again.task.attempts, 1, 'a continuation is not another attempt');
      assert.deepEqual(again.task.checkpoint, checkpoint);
      await s.applyMove(e.id, 1, taskMove({ kind: 'succeed', token: 'w2', revision: again.task.revision, now, bytes: 7, text: '' }));
      assert.equal((await s.getTask(e.id, 1))?.checkpoint, undefined, 'a final task drops its checkpoint');
      assert.deepEqual(finished, [], 'nobody closed it yet');
      const closed = await s.settleExecution(e.id);
      assert.equal(closed?.status, 'Succeed');
      assert.equal(closed?.endTime, new Date(now).toISOString());
      assert.deepEqual((await s.settleExecution(e.id))?.status, 'Succeed');
      await s.requestStop(e.id);
      assert.deepEqual(finished, [e.id], 'told once, by the settle that closed it');
      // A close by a stop is told too.
      const f = await s.createExecution({ rule: 'r10', trigger: 'manual' });
      await s.addTasks(f.id, 1, [task(1)]);
      await s.finishPlanning(f.id, 1);
      assert.equal((await s.requestStop(f.id))?.status, 'Stopped');
      assert.deepEqual(finished, [e.id, f.id]);
    });

    it('a task error is kept as {code, message}; a retry keeps it while the task waits, success clears it', async () => {
      const e = await store.createExecution({ rule: 'r11', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), { ...task(2), status: 'Error', statusText: 'INVALID_NAME: bad', error: { code: 'INVALID_NAME', message: 'bad' } }]);
      assert.deepEqual((await store.getTask(e.id, 2))?.error, { code: 'INVALID_NAME', message: 'bad' }, 'born in Error, with its error');
      const c = await claim(e.id, 1);
      assert.ok(c.applied);
      const error = { code: 'TOOMANYREQUESTS', message: 'slow down' };
      const r = await store.applyMove(e.id, 1, taskMove({ kind: 'retry', token: 'w1', revision: c.task.revision, now: Date.now(), delayMs: 1000, error, text: 'TOOMANYREQUESTS: slow down' }));
      assert.ok(r.applied && r.task.status === 'Pending');
      const waiting = await store.getTask(e.id, 1);
      assert.deepEqual(waiting?.error, error);
      assert.equal(waiting?.leaseToken, undefined);
      assert.ok((waiting?.queuedAt ?? 0) > Date.now(), 'due after the delay');
      await claim(e.id, 1, 'w2');
      await finish(e.id, 1, 'succeed');
      const done = await store.getTask(e.id, 1);
      assert.equal(done?.error, undefined);
      assert.equal(done?.attempts, 2);
      await store.finishPlanning(e.id, 2);
      assert.equal((await store.getExecution(e.id))?.status, 'Failed', 'the task born in Error fails the execution');
    });


    // ---- execution bytes --------------------------------------------------------------------

    it("an execution's bytes are its tasks' bytes: a repeated move adds nothing, the close takes the recount", async () => {
      const e = await store.createExecution({ rule: 'rb1', trigger: 'manual' });
      assert.equal(e.bytes, 0);
      await store.addTasks(e.id, 1, [task(1), task(2), task(3)]);
      await store.finishPlanning(e.id, 3);
      const c1 = await claim(e.id, 1);
      assert.ok(c1.applied);
      const succeed = taskMove({ kind: 'succeed', token: 'w1', revision: c1.task.revision, now: Date.now(), bytes: 1000, text: '' });
      assert.ok((await store.applyMove(e.id, 1, succeed)).applied);
      const repeated = await store.applyMove(e.id, 1, succeed);
      assert.ok(repeated.applied && repeated.repeated, 'the same move delivered again');
      assert.equal((await store.getExecution(e.id))?.bytes, 1000, 'counted once, while the execution runs');
      const c2 = await claim(e.id, 2);
      assert.ok(c2.applied);
      await store.applyMove(e.id, 2, taskMove({ kind: 'succeed', token: 'w1', revision: c2.task.revision, now: Date.now(), bytes: 234, text: '' }));
      await claim(e.id, 3);
      await finish(e.id, 3, 'fail');
      const closed = await store.settleExecution(e.id);
      assert.equal(closed?.status, 'Failed');
      assert.equal(closed?.bytes, 1234, 'closed with the sum of its tasks');
      assert.equal((await store.getExecution(e.id))?.bytes, 1234);
      assert.equal((await store.listExecutions({ rule: 'rb1' })).items[0]?.bytes, 1234, 'listed with it');
      assert.equal((await store.createFinishedExecution({ rule: 'rb1', trigger: 'manual', status: 'Failed', statusText: 'skipped' })).bytes, 0);
    });

    itOn('dynamodb', 'bytes: a lost counter write is repaired by the recount; the close sums the tasks whatever the counters say', async () => {
      const { client } = h.dynamo!;
      const doc = DynamoDBDocumentClient.from(client);
      const e = await store.createExecution({ rule: 'rb2', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      await store.finishPlanning(e.id, 2);
      await claim(e.id, 1);
      await finish(e.id, 1, 'succeed'); // 42 bytes
      // A counter write lost (the bytes) and another repeated: the shard is off by -42 + 5.
      await doc.send(new UpdateCommand({ TableName: TABLE, Key: { PK: `EXEC#${e.id}`, SK: 'COUNT#01' }, UpdateExpression: 'ADD bytes :d', ExpressionAttributeValues: { ':d': -37 } }));
      assert.equal((await store.getExecution(e.id))?.bytes, 5, 'the counters are off');
      assert.equal((await store.recount(e.id)).corrected, true, 'bytes alone off: corrected');
      assert.equal((await store.getExecution(e.id))?.bytes, 42);
      assert.equal((await store.recount(e.id)).corrected, false);
      await doc.send(new UpdateCommand({ TableName: TABLE, Key: { PK: `EXEC#${e.id}`, SK: 'COUNT#05' }, UpdateExpression: 'ADD bytes :d', ExpressionAttributeValues: { ':d': 1000 } }));
      await claim(e.id, 2);
      await finish(e.id, 2, 'succeed');
      const closed = await store.settleExecution(e.id);
      assert.equal(closed?.status, 'Succeed');
      assert.equal(closed?.bytes, 84, 'the close sums the tasks, not the counters');
      const meta = await doc.send(new GetCommand({ TableName: TABLE, Key: { PK: `EXEC#${e.id}`, SK: 'META' }, ConsistentRead: true }));
      assert.equal(meta.Item?.finalBytes, 84);
    });

    itOn('sqlite', 'bytes: a write that bypassed them is repaired by the recount; the close sums the tasks', async () => {
      const { tamper } = h.sqlite!;
      const e = await store.createExecution({ rule: 'rb3', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      await store.finishPlanning(e.id, 2);
      await claim(e.id, 1);
      await finish(e.id, 1, 'succeed');
      tamper.prepare('UPDATE executions SET bytes = 7 WHERE id = ?').run(Number(e.id));
      assert.equal((await store.getExecution(e.id))?.bytes, 7);
      assert.equal((await store.recount(e.id)).corrected, true, 'bytes alone off: corrected');
      assert.equal((await store.getExecution(e.id))?.bytes, 42);
      tamper.prepare('UPDATE executions SET bytes = 1 WHERE id = ?').run(Number(e.id));
      await claim(e.id, 2);
      await finish(e.id, 2, 'succeed');
      assert.equal((await store.settleExecution(e.id))?.bytes, 84, 'the close sums the tasks');
    });

    // ---- task logs ----------------------------------------------------------------------------

    /** `n` lines of run `run`, each `pad` characters long at least. */
    const runLines = (run: number, n: number, pad = 0) => Array.from({ length: n }, (_, i) => `2026-11-23T00:00:00.000Z info task run ${run} line ${i + 1}${pad ? ` ${'x'.repeat(pad)}` : ''}`);

    it("a task's log: runs read back in run order, bounded to the newest 200 lines, a repeated run written once", async () => {
      const e = await store.createExecution({ rule: 'rl1', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      assert.deepEqual(await store.taskLog(e.id, 1), [], 'none written yet');
      await store.appendTaskLog(e.id, 1, { run: 1, lines: runLines(1, 150), final: false });
      await store.appendTaskLog(e.id, 1, { run: 5, lines: runLines(5, 100), final: true });
      // A run whose worker lost its lease writes late: it still goes in run order.
      await store.appendTaskLog(e.id, 1, { run: 3, lines: runLines(3, 10), final: false });
      await store.appendTaskLog(e.id, 1, { run: 5, lines: runLines(5, 100), final: true }); // the same run again
      const log = await store.taskLog(e.id, 1);
      assert.equal(log.length, TASK_LOG_MAX_LINES);
      assert.match(log[0]!, /run 1 line 61$/, 'the oldest lines went first');
      assert.match(log[89]!, /run 1 line 150$/);
      assert.match(log[90]!, /run 3 line 1$/);
      assert.match(log[100]!, /run 5 line 1$/);
      assert.match(log.at(-1)!, /run 5 line 100$/);
      assert.equal(log.filter((l) => / run 5 line 100$/.test(l)).length, 1, 'a run written twice is kept once');
      assert.deepEqual(await store.taskLog(e.id, 2), [], 'per task');
      assert.deepEqual(await store.taskLog('999999', 1), [], 'no such execution');
    });

    it("a task's log is bounded to 64 KiB too, whichever comes first, the oldest dropped", async () => {
      const e = await store.createExecution({ rule: 'rl2', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1)]);
      await store.appendTaskLog(e.id, 1, { run: 1, lines: runLines(1, 30, 1900), final: false });
      await store.appendTaskLog(e.id, 1, { run: 2, lines: runLines(2, 20, 1900), final: true });
      const log = await store.taskLog(e.id, 1);
      const bytes = log.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
      assert.ok(bytes <= TASK_LOG_MAX_BYTES, `${bytes} bytes`);
      assert.ok(bytes > TASK_LOG_MAX_BYTES - 2000, 'filled up to the bound');
      assert.ok(log.length < 50 && log.length > 30, `${log.length} lines: fewer than 200, the bytes bound came first`);
      assert.match(log.at(-1)!, /run 2 line 20 x+$/, 'the newest kept');
      assert.match(log[0]!, /run 1 line \d+ x+$/);
      assert.doesNotMatch(log[0]!, /run 1 line 1 /, 'the oldest dropped');
    });

    itOn('dynamodb', "a task's log: one item per run beside the task, written by appendTaskLog only (moves never touch it), expiring with the task; runs made invisible are deleted", async () => {
      const { client } = h.dynamo!;
      const doc = DynamoDBDocumentClient.from(client);
      const now = Date.parse('2026-11-23T00:00:00Z');
      const kept = new DynamoDBTaskStore(client, TABLE, { retentionSeconds: 30 * 86_400, now: () => now });
      const e = await kept.createExecution({ rule: 'rl3', trigger: 'manual' });
      await kept.addTasks(e.id, 1, [task(1)]);
      await kept.finishPlanning(e.id, 1);
      const items = async () =>
        ((await doc.send(new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'PK = :pk AND begins_with(SK, :l)', ExpressionAttributeValues: { ':pk': `EXEC#${e.id}`, ':l': 'LOG#' }, ConsistentRead: true }))).Items ?? []);
      const c1 = await kept.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w1', now, leaseMs: 60_000, continuation: false }));
      assert.ok(c1.applied);
      const r1 = await kept.applyMove(e.id, 1, taskMove({ kind: 'retry', token: 'w1', revision: c1.task.revision, now, delayMs: 10, error: { code: 'UNAVAILABLE', message: 'x' }, text: 'retrying' }));
      assert.ok(r1.applied);
      await kept.appendTaskLog(e.id, 1, { run: c1.task.revision, lines: runLines(1, 3), final: false });
      const c2 = await kept.applyMove(e.id, 1, taskMove({ kind: 'claim', token: 'w2', now, leaseMs: 60_000, continuation: false }));
      assert.ok(c2.applied);
      const first = await items();
      await kept.heartbeat(e.id, 1, 'w2', now + 120_000);
      await kept.applyMove(e.id, 1, taskMove({ kind: 'succeed', token: 'w2', revision: c2.task.revision, now, bytes: 1, text: '' }));
      assert.deepEqual(await items(), first, 'moves and heartbeats never write the log');
      await kept.appendTaskLog(e.id, 1, { run: c2.task.revision, lines: runLines(2, 2), final: true });
      const taskItem = (await doc.send(new GetCommand({ TableName: TABLE, Key: { PK: `EXEC#${e.id}`, SK: 'TASK#000000001' }, ConsistentRead: true }))).Item!;
      assert.doesNotMatch(JSON.stringify(taskItem), /line 1/, 'nothing of the log in the task item');
      const logs = await items();
      assert.deepEqual(logs.map((i) => i.SK), [`LOG#000000001#${String(c1.task.revision).padStart(9, '0')}`, `LOG#000000001#${String(c2.task.revision).padStart(9, '0')}`], 'one item per run');
      assert.equal(taskItem.ttl, now / 1000 + 30 * 86_400);
      assert.equal(logs[1]!.ttl, taskItem.ttl, 'the run that ended the task expires with it');
      assert.equal(logs[0]!.ttl, taskItem.ttl + EARLIER_RUN_SLACK_S, 'an earlier run outlives it (no log with a hole)');
      assert.equal((await kept.taskLog(e.id, 1)).length, 5);

      // Runs the newer ones make invisible are deleted by the run that ends the task (one before
      // it only adds its item: a run costs one put), unless that is the task's first run.
      await kept.appendTaskLog(e.id, 1, { run: 10, lines: runLines(10, TASK_LOG_MAX_LINES), final: false });
      assert.equal((await items()).length, 3, 'a run that hands over or retries only adds its item');
      await kept.appendTaskLog(e.id, 1, { run: 11, lines: runLines(11, 1), final: true });
      assert.deepEqual((await items()).map((i) => i.SK), ['LOG#000000001#000000010', 'LOG#000000001#000000011'], 'runs 1 and 2 were wholly beyond the bound');
      const log = await kept.taskLog(e.id, 1);
      assert.equal(log.length, TASK_LOG_MAX_LINES);
      assert.match(log[0]!, /run 10 line 2$/);
    });

    itOn('sqlite', "a task's log: one row per run in task_logs, deleted with its task; runs made invisible are deleted", async () => {
      const { tamper } = h.sqlite!;
      const e = await store.createExecution({ rule: 'rl4', trigger: 'manual' });
      await store.addTasks(e.id, 1, [task(1), task(2)]);
      for (const [run, n] of [[1, 5], [2, 5], [4, TASK_LOG_MAX_LINES], [6, 3]] as const) await store.appendTaskLog(e.id, 1, { run, lines: runLines(run, n), final: run === 6 });
      await store.appendTaskLog(e.id, 2, { run: 1, lines: runLines(1, 2), final: true });
      const rows = (task: number) => tamper.prepare('SELECT run FROM task_logs WHERE execution_id = ? AND task_id = ? ORDER BY run').pluck().all(Number(e.id), task);
      assert.deepEqual(rows(1), [4, 6], 'runs 1 and 2 can no longer be shown: deleted');
      assert.match((await store.taskLog(e.id, 1))[0]!, /run 4 line 4$/);
      tamper.pragma('foreign_keys = ON');
      tamper.prepare('DELETE FROM tasks WHERE execution_id = ? AND id = 1').run(Number(e.id));
      assert.deepEqual(rows(1), [], "the task's log went with it");
      assert.deepEqual(rows(2), [1]);
      await assert.rejects(store.appendTaskLog(e.id, 1, { run: 7, lines: ['x'], final: true }), /FOREIGN KEY/, 'no log without its task');
    });

    it('a cursor the store did not give out is INVALID_CURSOR (the API answers 400)', async () => {
      const e = await store.createExecution({ rule: 'r12', trigger: 'manual' });
      const invalid = (err: unknown) => (err as { code?: string }).code === 'INVALID_CURSOR';
      await assert.rejects(store.listExecutions({ cursor: 'not-a-cursor' }), invalid);
      await assert.rejects(store.listExecutions({ cursor: encodeCursor(42) }), invalid);
      await assert.rejects(store.listTasks(e.id, { cursor: 'not-a-cursor' }), invalid);
      await assert.rejects(store.listTasks(e.id, { cursor: encodeCursor(null) }), invalid);
    });

    if (backend.kind === 'sqlite') {
      it('a cursor of another listing is not a cursor of this one', async () => {
        const e = await store.createExecution({ rule: 'r13a', trigger: 'manual' });
        await store.createExecution({ rule: 'r13a', trigger: 'manual' });
        await store.addTasks(e.id, 1, [task(1), task(2), task(3)]);
        const byRule = await store.listExecutions({ rule: 'r13a', limit: 1 });
        assert.ok(byRule.cursor);
        assert.equal((await store.listExecutions({ rule: 'r13a', limit: 1, cursor: byRule.cursor })).items.length, 1, 'its own listing takes it');
        const invalid = (err: unknown) => (err as { code?: string }).code === 'INVALID_CURSOR';
        await assert.rejects(store.listExecutions({ rule: 'r13b', cursor: byRule.cursor }), invalid);
        await assert.rejects(store.listExecutions({ cursor: byRule.cursor }), invalid);
        await assert.rejects(store.listExecutions({ rule: 'r13a', status: 'Failed', cursor: byRule.cursor }), invalid);
        const tasks = await store.listTasks(e.id, { limit: 1 });
        assert.ok(tasks.cursor);
        await assert.rejects(store.listTasks(e.id, { status: 'Pending', cursor: tasks.cursor }), invalid);
        await assert.rejects(store.listTasks(String(Number(e.id) + 1), { cursor: tasks.cursor }), invalid);
        await assert.rejects(store.listTasks(e.id, { cursor: byRule.cursor }), invalid);
      });

      it('a move and its counter deltas commit in one transaction: a failure between the two writes leaves neither', async () => {
        const { tamper } = h.sqlite!;
        const e = await store.createExecution({ rule: 'r14', trigger: 'manual' });
        await store.addTasks(e.id, 1, [task(1), task(2)]);
        await store.finishPlanning(e.id, 2);
        const before = await store.getTask(e.id, 1);
        // Fails the counter write, and only once the task's own write has happened in the same
        // transaction (the trigger reads the task as Running): a failure mid-move.
        tamper.exec(`CREATE TRIGGER fail_counters BEFORE UPDATE OF running ON executions
          WHEN (SELECT status FROM tasks WHERE execution_id = NEW.id AND id = 1) = 'Running'
          BEGIN SELECT RAISE(ABORT, 'injected: counter write failed after the task write'); END`);
        const move = taskMove({ kind: 'claim', token: 'w1', now: Date.now(), leaseMs: 60_000, continuation: false });
        try {
          await assert.rejects(store.applyMove(e.id, 1, move), /injected: counter write failed after the task write/);
        } finally {
          tamper.exec('DROP TRIGGER fail_counters');
        }
        assert.deepEqual(await store.getTask(e.id, 1), before, 'the task write was rolled back with the counters');
        assert.deepEqual(pick((await store.getExecution(e.id))!.counts), { total: 2, pending: 2, running: 0, succeed: 0, failed: 0, stopped: 0 });
        assert.equal((await store.recount(e.id)).corrected, false, 'nothing to repair');
        // The same move again: it was never applied, so it applies now (not a repeat).
        const retried = await store.applyMove(e.id, 1, move);
        assert.ok(retried.applied && !retried.repeated);
        assert.deepEqual(pick((await store.getExecution(e.id))!.counts), { total: 2, pending: 1, running: 1, succeed: 0, failed: 0, stopped: 0 });

        // Planning too: tasks and their counts land together or not at all.
        tamper.exec(`CREATE TRIGGER fail_total BEFORE UPDATE OF total ON executions
          BEGIN SELECT RAISE(ABORT, 'injected: counts of new tasks failed'); END`);
        try {
          await assert.rejects(store.addTasks(e.id, 3, [task(3), task(4)]), /injected/);
        } finally {
          tamper.exec('DROP TRIGGER fail_total');
        }
        assert.equal(await store.getTask(e.id, 3), undefined, 'no task without its count');
        assert.equal((await store.getExecution(e.id))!.counts.total, 2);
      });

      it('counters are a view: a write that bypassed them never closes wrongly, the recount repairs them', async () => {
        const { tamper } = h.sqlite!;
        const e = await store.createExecution({ rule: 'r15', trigger: 'manual' });
        await store.addTasks(e.id, 1, [task(1)]);
        await store.finishPlanning(e.id, 1);
        // Counters that say the pending task succeeded (nothing of ours writes that).
        tamper.prepare('UPDATE executions SET pending = pending - 1, succeed = succeed + 1 WHERE id = ?').run(Number(e.id));
        assert.equal((await store.settleExecution(e.id))?.status, 'InProgress', 'the recount, not the counters, decides: the task is still Pending');
        const fixed = await store.recount(e.id);
        assert.equal(fixed.corrected, true);
        assert.deepEqual(pick(fixed.counts), { total: 1, pending: 1, running: 0, succeed: 0, failed: 0, stopped: 0 });
        assert.equal((await store.recount(e.id)).corrected, false, 'in step now');
        // The other way: a task ended by a write that bypassed the counters is seen by the very next settle.
        tamper.prepare(`UPDATE tasks SET status = 'Success' WHERE execution_id = ? AND id = 1`).run(Number(e.id));
        const closed = await store.settleExecution(e.id);
        assert.equal(closed?.status, 'Succeed');
        assert.deepEqual(pick(closed!.counts), { total: 1, pending: 0, running: 0, succeed: 1, failed: 0, stopped: 0 }, 'closed with the recount');
      });

      it('the file: created 0600, history and ids kept across a reopen, a newer schema refused', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'hr-store-file-'));
        try {
          const file = join(dir, 'state.db');
          let db = openStateDatabase(file);
          let s = new SqliteTaskStore(db);
          const a = await s.createExecution({ rule: 'r16', trigger: 'manual' });
          await s.addTasks(a.id, 1, [task(1)]);
          await s.applyMove(a.id, 1, taskMove({ kind: 'claim', token: 'w', now: Date.now(), leaseMs: 60_000, continuation: false }));
          for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
          assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
          db.close();
          db = openStateDatabase(file);
          s = new SqliteTaskStore(db);
          assert.equal((await s.getTask(a.id, 1))?.status, 'Running', 'the move survived the close');
          assert.equal((await s.createExecution({ rule: 'r16', trigger: 'manual' })).id, String(Number(a.id) + 1));
          // A file of schema 1 (before the drift table, the referrers of version 3, execution bytes and task logs of version 4) is migrated when opened.
          await s.applyMove(a.id, 1, taskMove({ kind: 'succeed', token: 'w', revision: 1, now: Date.now(), bytes: 512, text: '' }));
          db.exec('DROP TABLE drift; DROP TABLE referrers; ALTER TABLE tasks DROP COLUMN referrers; ALTER TABLE tasks DROP COLUMN accessories; DROP TABLE task_logs; ALTER TABLE executions DROP COLUMN bytes');
          db.pragma('user_version = 1');
          db.close();
          db = openStateDatabase(file);
          assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
          s = new SqliteTaskStore(db);
          assert.equal((await s.getExecution(a.id))?.bytes, 512, "an execution's bytes are filled from its tasks by the migration");
          await s.appendTaskLog(a.id, 1, { run: 2, lines: ['a line'], final: true });
          assert.deepEqual(await s.taskLog(a.id, 1), ['a line']);
          await s.recordDrift({ rule: 'r16', takenAt: '2026-11-23T00:00:00.000Z', counts: { missing: 0, different: 0, extra: 0, inSync: 1 }, extrasChecked: false, items: [], truncated: false });
          assert.equal((await s.lastDrift('r16'))?.counts.inSync, 1);
          assert.equal((await s.getTask(a.id, 1))?.status, 'Success', 'history kept by the migration');
          db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
          db.close();
          assert.throws(() => openStateDatabase(file), (err: { code?: string; message?: string }) => err.code === 'DATA_DIR_INVALID' && /newer harbor-replicator/.test(err.message ?? ''));
          const junk = join(dir, 'junk.db');
          await writeFile(junk, 'not a database, but long enough to be read as a header by SQLite........................................');
          assert.throws(() => openStateDatabase(junk), (err: { code?: string }) => err.code === 'DATA_DIR_INVALID');
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });

  describe(`DeliveryLog and ConfigStore on ${backend.name}`, () => {
    let h: Harness;
    before(async () => {
      h = await backend.start();
    });
    after(async () => {
      await h?.stop();
    });

    it('the first claim of a delivery wins; later ones read what it started; a released claim is taken afresh', async () => {
      const { service } = h;
      assert.equal(await service.claimDelivery('k1', 3600), true);
      assert.equal(await service.claimDelivery('k1', 3600), false);
      assert.deepEqual(await service.deliveryExecutions('k1'), [], 'still being handled');
      await service.recordDelivery('k1', ['7', '8']);
      assert.deepEqual(await service.deliveryExecutions('k1'), ['7', '8']);
      assert.deepEqual(await service.deliveryExecutions('never'), []);
      await service.releaseDelivery('k1');
      assert.equal(await service.claimDelivery('k1', 3600), true, 'released: the retry is handled afresh');
      assert.deepEqual(await service.deliveryExecutions('k1'), []);
    });

    it('config entries: create once, replace only what exists, delete, listed by name', async () => {
      const { service } = h;
      assert.equal(await service.putEntry('registry', 'b', { name: 'b', url: 'http://b' }, 'create'), true);
      assert.equal(await service.putEntry('registry', 'b', { name: 'b', url: 'http://other' }, 'create'), false, 'exists');
      assert.equal(await service.putEntry('registry', 'a', { name: 'a', url: 'http://a' }, 'replace'), false, 'nothing to replace');
      assert.equal(await service.putEntry('registry', 'a', { name: 'a', url: 'http://a' }, 'create'), true);
      assert.equal(await service.putEntry('registry', 'b', { name: 'b', url: 'http://b2', nested: { x: [1, 2] } }, 'replace'), true);
      assert.equal(await service.putEntry('rule', 'a', { name: 'a' }, 'create'), true, 'kinds are apart');
      assert.deepEqual(await service.getEntry('registry', 'b'), { name: 'b', url: 'http://b2', nested: { x: [1, 2] } });
      assert.deepEqual((await service.listEntries('registry')).map((e) => e.name), ['a', 'b']);
      assert.equal(await service.deleteEntry('registry', 'a'), true);
      assert.equal(await service.deleteEntry('registry', 'a'), false);
      assert.equal(await service.getEntry('registry', 'a'), undefined);
      assert.deepEqual((await service.listEntries('rule')).map((e) => e.name), ['a']);
    });

    if (backend.kind === 'sqlite') {
      it('a claim is kept ttlSeconds: an expired one is taken afresh and pruned', async () => {
        let now = Date.parse('2026-11-23T00:00:00Z');
        const dir = await mkdtemp(join(tmpdir(), 'hr-deliveries-'));
        const db = openStateDatabase(join(dir, 'state.db'));
        try {
          const service = new SqliteServiceStore(db, () => now);
          assert.equal(await service.claimDelivery('k', 60), true);
          await service.recordDelivery('k', ['1']);
          now += 59_000;
          assert.equal(await service.claimDelivery('k', 60), false, 'still kept');
          assert.equal(service.pruneDeliveries(), 0);
          now += 1_000;
          assert.equal(await service.claimDelivery('k', 60), true, 'expired: claimed afresh');
          assert.deepEqual(await service.deliveryExecutions('k'), []);
          now += 60_000;
          assert.equal(service.pruneDeliveries(), 1);
        } finally {
          db.close();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
}

function pick(c: { total: number; pending: number; running: number; succeed: number; failed: number; stopped: number }) {
  return { total: c.total, pending: c.pending, running: c.running, succeed: c.succeed, failed: c.failed, stopped: c.stopped };
}
