import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  countField,
  emptyCounts,
  FINAL_TASK,
  TASK_STATUSES,
  type DriftReport,
  type Execution,
  type ExecutionStatus,
  referrerTargetKey,
  type NewTask,
  type RecordedReferrer,
  type ReferrerTarget,
  type Task,
  type TaskCounts,
  type TaskError,
  type TaskStatus,
  type Trigger,
} from '../../executions/model.js';
import { alreadyApplied, applyMove, countDelta, newTasks, settleDecision, taskMove, type ExecutionFacts, type TaskMove, type TaskWrite } from '../../executions/transitions.js';
import { decodeCursor as decodeJsonCursor, encodeCursor, InvalidCursorError } from '../listing-cursor.js';
import { conditionally } from './dynamodb-conditional.js';
import { documentClient } from './dynamodb-table.js';
import { DynamoDBTaskLogs } from './dynamodb-task-log.js';
import type { TaskLogSegment } from '../../executions/task-log.js';
import type { ExecutionQuery, MoveOutcome, Page, TaskStore } from '../../executions/ports.js';

/**
 * The TaskStore on one DynamoDB table (`@aws-sdk/client-dynamodb`; dynalite locally):
 *
 * | item | PK | SK | indexes |
 * | --- | --- | --- | --- |
 * | execution | `EXEC#<id>` | `META` | GSI1 `RULE#<rule>` / start (by rule), GSI2 `EXECUTIONS` / start (all), GSI4 `ACTIVE` / rule#start (in progress only) |
 * | counter shard | `EXEC#<id>` | `COUNT#<nn>` (16 shards) | |
 * | task | `EXEC#<id>` | `TASK#<n>` | GSI3 `EXEC#<id>#<status>` / `TASK#<n>` (tasks by status) |
 * | id sequence | `SEQ` | `EXECUTION` | |
 * | a rule's last drift report | `DRIFT#<rule>` | `LAST` | |
 * | a referrer pushed to a destination | `REFERRERS#<host>/<repository>@<subject>` | `REF#<digest>` | |
 * | one run of a task's log | `EXEC#<id>` | `LOG#<n>#<run>` | (dynamodb-task-log.ts) |
 *
 * An execution's bytes are counted like its tasks: a success's bytes are added to the shard of
 * its counters with the same `ADD`, and the recount that closes the execution sums them from the
 * tasks (`finalBytes`), as `finalCounts`.
 *
 * No scans and no transactions (dynalite has none): a task moves by one conditional update, then
 * its shard of the execution's counters by an atomic `ADD`; a 100k-task execution spreads its
 * counter writes over 16 items. When the counters say nothing is left, the tasks are recounted
 * and the execution closed by a conditional update.
 */
export class DynamoDBTaskStore implements TaskStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly now: () => number;
  private readonly counterFlushMs: number;
  /** Counter deltas not yet written, per execution and shard (see `counterFlushMs`). */
  private readonly unflushed = new Map<string, { id: string; shard: number; delta: Partial<Tally> }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly logs: DynamoDBTaskLogs;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
    opts: {
      now?: () => number;
      /**
       * Write counter moves at most this often instead of after every transition (0: at once).
       * Safe because tasks are the truth: a crash loses deltas, and the recount that closes an
       * execution does not read them. Reads in this process flush first.
       */
      counterFlushMs?: number;
      /**
       * Finished executions and their tasks are deleted this long after they end, through the
       * table's TTL attribute `ttl` (none: kept for ever, as in the embedded store).
       */
      retentionSeconds?: number;
      /** Called by the one settle call that closes an execution (metrics, logs). */
      onFinished?: (execution: Execution) => void;
      /** Called after a drift report was kept as its rule's last (metrics). */
      onDrift?: (report: DriftReport) => void;
    } = {},
  ) {
    this.doc = documentClient(client);
    this.now = opts.now ?? Date.now;
    this.counterFlushMs = opts.counterFlushMs ?? 0;
    this.retentionSeconds = opts.retentionSeconds;
    this.onFinished = opts.onFinished;
    this.onDrift = opts.onDrift;
    this.logs = new DynamoDBTaskLogs(this.doc, table, () => this.expiry());
  }

  private readonly onFinished: ((execution: Execution) => void) | undefined;
  private readonly onDrift: ((report: DriftReport) => void) | undefined;

  private readonly retentionSeconds: number | undefined;

  /** The `ttl` (epoch seconds) of an item that ends now; undefined without retention. */
  private expiry(): number | undefined {
    return this.retentionSeconds === undefined ? undefined : Math.floor(this.now() / 1000) + this.retentionSeconds;
  }

  /** Writes the counter moves held back by `counterFlushMs`. */
  async flushCounters(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = [...this.unflushed.values()];
    this.unflushed.clear();
    const write = this.flushing.then(() => Promise.all(batch.map((b) => this.writeCounts(b.id, b.shard, b.delta)))).then(() => undefined);
    this.flushing = write.catch(() => undefined);
    await write;
  }

  // ---- executions ---------------------------------------------------------------------------

  private async nextId(): Promise<string> {
    const r = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { PK: 'SEQ', SK: 'EXECUTION' },
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return String(r.Attributes?.n);
  }

  private metaItem(id: string, rule: string, trigger: Trigger, start: string, status: ExecutionStatus, statusText?: string) {
    const sort = `${start}#${id.padStart(12, '0')}`;
    const active = status === 'InProgress';
    return {
      PK: `EXEC#${id}`,
      SK: 'META',
      id,
      rule,
      trigger,
      status,
      statusText,
      planned: !active,
      stopRequested: false,
      start,
      endTime: active ? undefined : start,
      GSI1PK: `RULE#${rule}`,
      GSI1SK: sort,
      GSI2PK: 'EXECUTIONS',
      GSI2SK: sort,
      ...(active ? { APK: 'ACTIVE', ASK: `${rule}#${sort}` } : { finalCounts: emptyCounts() }),
    };
  }

  async createExecution(init: { rule: string; trigger: Trigger }): Promise<Execution> {
    const id = await this.nextId();
    const item = this.metaItem(id, init.rule, init.trigger, new Date(this.now()).toISOString(), 'InProgress');
    await this.doc.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(PK)' }));
    return toExecution(item, emptyCounts(), 0);
  }

  async createFinishedExecution(init: { rule: string; trigger: Trigger; status: ExecutionStatus; statusText: string }): Promise<Execution> {
    const id = await this.nextId();
    const ttl = this.expiry();
    const item = { ...this.metaItem(id, init.rule, init.trigger, new Date(this.now()).toISOString(), init.status, init.statusText), ...(ttl === undefined ? {} : { ttl }) };
    await this.doc.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(PK)' }));
    return toExecution(item, emptyCounts(), 0);
  }

  /** The counters of an open execution: its counts and bytes, summed over the shards. */
  private async counts(id: string): Promise<Tally> {
    if (this.unflushed.size > 0) await this.flushCounters();
    const counts: Tally = { ...emptyCounts(), bytes: 0 };
    const r = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :c)',
        ExpressionAttributeValues: { ':pk': `EXEC#${id}`, ':c': 'COUNT#' },
        ConsistentRead: true,
      }),
    );
    for (const shard of r.Items ?? []) {
      for (const k of Object.keys(counts) as Array<keyof Tally>) counts[k] += Number(shard[k] ?? 0);
    }
    return counts;
  }

  /** An execution item with its counts and bytes: final ones once closed, else the counters. */
  private async withCounts(i: Record<string, unknown>): Promise<Execution> {
    const final = i.finalCounts as TaskCounts | undefined;
    // Executions closed before bytes were counted have no finalBytes: 0.
    if (final) return toExecution(i, final, Number(i.finalBytes ?? 0));
    const { bytes, ...counts } = await this.counts(String(i.id));
    return toExecution(i, counts, bytes);
  }

  async getExecution(id: string): Promise<Execution | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `EXEC#${id}`, SK: 'META' }, ConsistentRead: true }));
    if (!r.Item) return undefined;
    return this.withCounts(r.Item);
  }

  async listExecutions(query: ExecutionQuery): Promise<Page<Execution>> {
    const input: QueryCommandInput = query.rule
      ? {
          TableName: this.table,
          IndexName: 'GSI1',
          KeyConditionExpression: 'GSI1PK = :pk',
          ExpressionAttributeValues: { ':pk': `RULE#${query.rule}` },
        }
      : {
          TableName: this.table,
          IndexName: 'GSI2',
          KeyConditionExpression: 'GSI2PK = :pk',
          ExpressionAttributeValues: { ':pk': 'EXECUTIONS' },
        };
    input.ScanIndexForward = false;
    input.Limit = query.limit ?? 20;
    // Filters apply after Limit: a page may hold fewer items (even none) and still have a cursor.
    const filters: string[] = [];
    if (query.status) {
      filters.push('#s = :s');
      input.ExpressionAttributeNames = { ...input.ExpressionAttributeNames, '#s': 'status' };
      input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ':s': query.status };
    }
    if (query.trigger) {
      filters.push('#t = :t');
      input.ExpressionAttributeNames = { ...input.ExpressionAttributeNames, '#t': 'trigger' };
      input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ':t': query.trigger };
    }
    if (filters.length > 0) input.FilterExpression = filters.join(' AND ');
    if (query.cursor) input.ExclusiveStartKey = decodeCursor(query.cursor, input);
    const r = await queryPage(this.doc, input);
    const items = await Promise.all((r.Items ?? []).map((i) => this.withCounts(i)));
    return { items, cursor: r.LastEvaluatedKey ? encodeCursor(r.LastEvaluatedKey) : undefined };
  }

  async activeExecutions(rule?: string): Promise<Execution[]> {
    const out: Execution[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'GSI4',
          KeyConditionExpression: rule ? 'APK = :a AND begins_with(ASK, :r)' : 'APK = :a',
          ExpressionAttributeValues: rule ? { ':a': 'ACTIVE', ':r': `${rule}#` } : { ':a': 'ACTIVE' },
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) out.push(await this.withCounts(i));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  // ---- tasks --------------------------------------------------------------------------------

  /** Moves an execution's counters (one shard); batched when `counterFlushMs` is set. */
  async addCounts(id: string, shard: number, delta: Partial<Tally>): Promise<void> {
    if (this.counterFlushMs <= 0) return this.writeCounts(id, shard, delta);
    const key = `${id} ${shard % SHARDS}`;
    const held = this.unflushed.get(key) ?? { id, shard, delta: {} };
    for (const [k, v] of Object.entries(delta) as Array<[keyof Tally, number]>) held.delta[k] = (held.delta[k] ?? 0) + v;
    this.unflushed.set(key, held);
    this.flushTimer ??= setTimeout(() => void this.flushCounters().catch(() => {}), this.counterFlushMs);
  }

  private async writeCounts(id: string, shard: number, delta: Partial<Tally>): Promise<void> {
    const entries = Object.entries(delta).filter(([, v]) => v !== 0);
    if (entries.length === 0) return;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { PK: `EXEC#${id}`, SK: `COUNT#${String(shard % SHARDS).padStart(2, '0')}` },
        // Counter shards expire with their execution: the last write sets their end.
        UpdateExpression: `ADD ${entries.map((_, i) => `#k${i} :v${i}`).join(', ')}${this.retentionSeconds === undefined ? '' : ' SET #ttl = :ttl'}`,
        ExpressionAttributeNames: { ...Object.fromEntries(entries.map(([k], i) => [`#k${i}`, k])), ...(this.retentionSeconds === undefined ? {} : { '#ttl': 'ttl' }) },
        ExpressionAttributeValues: { ...Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])), ...(this.retentionSeconds === undefined ? {} : { ':ttl': this.expiry() }) },
      }),
    );
  }

  async addTasks(executionId: string, firstId: number, tasks: NewTask[]): Promise<Task[]> {
    const created = newTasks(executionId, firstId, tasks, this.now());
    await this.putTasks(created);
    const delta: Partial<TaskCounts> = { total: created.length };
    for (const t of created) delta[countField(t.status)] = (delta[countField(t.status)] ?? 0) + 1;
    await this.addCounts(executionId, firstId, delta);
    return created;
  }

  /** Writes whole task items (BatchWriteItem, 25 at a time, unprocessed ones retried). */
  async putTasks(tasks: readonly Task[]): Promise<void> {
    for (let i = 0; i < tasks.length; i += 25) {
      const ttl = this.expiry();
      let requests = tasks.slice(i, i + 25).map((t) => ({ PutRequest: { Item: { ...taskItem(t), ...(ttl !== undefined && FINAL_TASK.has(t.status) ? { ttl } : {}) } } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        const r = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
        requests = (r.UnprocessedItems?.[this.table] ?? []) as typeof requests;
        if (requests.length > 0) await sleep(Math.min(1000, 20 * 2 ** attempt));
      }
    }
  }

  async leasePlanning(executionId: string, token: string, until: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `EXEC#${executionId}`, SK: 'META' },
          UpdateExpression: 'SET planLease = :until, planToken = :tok',
          ConditionExpression: 'attribute_exists(PK) AND planned = :f AND (attribute_not_exists(planLease) OR planLease < :now OR planToken = :tok)',
          ExpressionAttributeValues: { ':until': until, ':tok': token, ':f': false, ':now': this.now() },
        }),
      ),
    );
  }

  async finishPlanning(executionId: string, total: number, opts: { error?: string | undefined } = {}): Promise<Execution | undefined> {
    const error = opts.error;
    // The first finish wins: a planning delivered twice does not overwrite its outcome.
    await conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `EXEC#${executionId}`, SK: 'META' },
          UpdateExpression: `SET planned = :t, planned_total = :n${error ? ', statusText = :e, planError = :e' : ''} REMOVE planLease, planToken`,
          ConditionExpression: 'attribute_exists(PK) AND planned = :f',
          ExpressionAttributeValues: { ':t': true, ':f': false, ':n': total, ...(error ? { ':e': error } : {}) },
        }),
      ),
    );
    return this.settleExecution(executionId);
  }

  async releasePlanning(executionId: string, opts: { countReplan: boolean }): Promise<number> {
    const r = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { PK: `EXEC#${executionId}`, SK: 'META' },
        UpdateExpression: 'ADD replans :n REMOVE planLease, planToken',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeValues: { ':n': opts.countReplan ? 1 : 0 },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Number(r.Attributes?.replans ?? 0);
  }

  async getTask(executionId: string, taskId: number): Promise<Task | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `EXEC#${executionId}`, SK: taskSk(taskId) }, ConsistentRead: true }));
    return r.Item ? toTask(r.Item) : undefined;
  }

  async listTasks(executionId: string, query: { status?: TaskStatus | undefined; limit?: number; cursor?: string | undefined }): Promise<Page<Task>> {
    const input: QueryCommandInput = query.status
      ? {
          TableName: this.table,
          IndexName: 'GSI3',
          KeyConditionExpression: 'GSI3PK = :pk',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}#${query.status}` },
        }
      : {
          TableName: this.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :t)',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}`, ':t': 'TASK#' },
        };
    input.Limit = query.limit ?? 100;
    if (query.cursor) input.ExclusiveStartKey = decodeCursor(query.cursor, input);
    const r = await queryPage(this.doc, input);
    return { items: (r.Items ?? []).map(toTask), cursor: r.LastEvaluatedKey ? encodeCursor(r.LastEvaluatedKey) : undefined };
  }

  async applyMove(executionId: string, taskId: number, move: TaskMove): Promise<MoveOutcome> {
    const key = { PK: `EXEC#${executionId}`, SK: taskSk(taskId) };
    const { update, condition, names, values } = moveExpression(executionId, move, FINAL_TASK.has(move.to) ? this.expiry() : undefined);
    let old: Record<string, unknown> | undefined;
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      old = r.Attributes;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Not applied now: either it was, by an earlier delivery of this very move, or it does not hold.
      const current = await this.getTask(executionId, taskId);
      if (current && alreadyApplied(current, move)) return { applied: true, repeated: true, from: move.to, task: current };
      return { applied: false, task: current };
    }
    const before = toTask(old!);
    const after = applyMove(before, move) ?? { ...before, status: move.to };
    // The execution's bytes move with the task's (a success writes them), in the same ADD.
    const delta: Partial<Tally> = { ...countDelta(before.status, move.to), ...(after.bytes !== before.bytes ? { bytes: after.bytes - before.bytes } : {}) };
    if (Object.keys(delta).length > 0) await this.addCounts(executionId, taskId, delta);
    return { applied: true, repeated: false, from: before.status, task: after };
  }

  async heartbeat(executionId: string, taskId: number, token: string, leaseUntil: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `EXEC#${executionId}`, SK: taskSk(taskId) },
          UpdateExpression: 'SET lease = :l',
          ConditionExpression: '#s = :running AND leaseToken = :t',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':l': leaseUntil, ':running': 'Running', ':t': token },
        }),
      ),
    );
  }

  /**
   * Tasks of an execution in one status, counted through the status index (the truth behind the
   * counters); with `withBytes`, their bytes summed too (only a success writes a task's bytes, so
   * the Success tasks' are all of them). The same items either way.
   */
  private async tallyStatus(executionId: string, status: TaskStatus, withBytes = false): Promise<{ n: number; bytes: number }> {
    let n = 0;
    let bytes = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'GSI3',
          KeyConditionExpression: 'GSI3PK = :pk',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}#${status}` },
          ...(withBytes ? { ProjectionExpression: '#b', ExpressionAttributeNames: { '#b': 'bytes' } } : { Select: 'COUNT' as const }),
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) bytes += Number(i.bytes ?? 0);
      n += r.Count ?? 0;
      start = r.LastEvaluatedKey;
    } while (start);
    return { n, bytes };
  }

  /** Counts the tasks themselves, and sums their bytes (the truth the counters are a fast view of). */
  private async countTasks(executionId: string): Promise<Tally> {
    const truth: Tally = { ...emptyCounts(), bytes: 0 };
    const [success, ...counted] = await Promise.all([this.tallyStatus(executionId, 'Success', true), ...OTHER_STATUSES.map((s) => this.tallyStatus(executionId, s))]);
    OTHER_STATUSES.forEach((s, i) => (truth[countField(s)] = counted[i]!.n));
    truth.succeed = success!.n;
    truth.bytes = success!.bytes;
    truth.total = TASK_STATUSES.reduce((n, s) => n + truth[countField(s)], 0);
    return truth;
  }

  /**
   * Sets the counters to the recount (a lost or repeated counter write left them off): the
   * difference goes to one shard, so later moves add up right again.
   */
  async recount(executionId: string): Promise<{ counts: TaskCounts; corrected: boolean }> {
    const [fast, truth] = await Promise.all([this.counts(executionId), this.countTasks(executionId)]);
    const delta: Partial<Tally> = {};
    for (const k of Object.keys(truth) as Array<keyof Tally>) if (truth[k] !== fast[k]) delta[k] = truth[k] - fast[k];
    const corrected = Object.keys(delta).length > 0;
    if (corrected) await this.writeCounts(executionId, 0, delta);
    const { bytes: _bytes, ...counts } = truth;
    return { counts, corrected };
  }

  /**
   * Closes the execution when it is final. The counters only say when to look: when they show no
   * open task, the tasks are recounted and `settleDecision` decides from that recount. Counters
   * that are off (a lost write) keep an execution open until the sweeper's recount, never close
   * it wrongly.
   */
  async settleExecution(executionId: string): Promise<Execution | undefined> {
    return this.settle(executionId, false);
  }

  /**
   * Closes the execution when its tasks say so. The counters answer first when they say tasks are
   * open (progress, a read of 16 items); `recount` skips them, for a close that must not wait for
   * the sweeper to find a lost counter write (a stop).
   */
  private async settle(executionId: string, recount: boolean): Promise<Execution | undefined> {
    const meta = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `EXEC#${executionId}`, SK: 'META' }, ConsistentRead: true }));
    const item = meta.Item;
    if (!item) return undefined;
    if (item.status !== 'InProgress') return toExecution(item, (item.finalCounts as TaskCounts | undefined) ?? emptyCounts(), Number(item.finalBytes ?? 0));
    if (!recount) {
      const { bytes: fastBytes, ...fast } = await this.counts(executionId);
      if (!item.planned || fast.pending + fast.scheduled + fast.running > 0) return toExecution(item, fast, fastBytes);
    }
    const { bytes, ...truth } = await this.countTasks(executionId);
    const decision = settleDecision(executionFacts(item), truth);
    if (!decision.close) return toExecution(item, truth, bytes);
    const end = new Date(this.now()).toISOString();
    const ttl = this.expiry();
    const text = decision.statusText;
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `EXEC#${executionId}`, SK: 'META' },
          UpdateExpression: `SET #s = :s, endTime = :end, finalCounts = :c, finalBytes = :b${text !== undefined ? ', statusText = :text' : ''}${ttl === undefined ? '' : ', #ttl = :ttl'} REMOVE APK, ASK`,
          ConditionExpression: '#s = :inprogress',
          ExpressionAttributeNames: { '#s': 'status', ...(ttl === undefined ? {} : { '#ttl': 'ttl' }) },
          ExpressionAttributeValues: {
            ':s': decision.status,
            ':end': end,
            ':c': truth,
            ':b': bytes,
            ':inprogress': 'InProgress',
            ...(text !== undefined ? { ':text': text } : {}),
            ...(ttl === undefined ? {} : { ':ttl': ttl }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const closed = toExecution(r.Attributes!, truth, bytes);
      this.onFinished?.(closed);
      return closed;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return this.getExecution(executionId);
      throw err;
    }
  }

  async requestStop(executionId: string): Promise<Execution | undefined> {
    const ok = await conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `EXEC#${executionId}`, SK: 'META' },
          UpdateExpression: 'SET stopRequested = :t',
          ConditionExpression: 'attribute_exists(PK)',
          ExpressionAttributeValues: { ':t': true },
        }),
      ),
    );
    if (!ok) return undefined;
    // Tasks that become Pending after this (a retry) see the request when a worker takes them.
    for (const status of ['Pending', 'Scheduled'] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.listTasks(executionId, { status, limit: 500, cursor });
        for (const t of page.items) await this.applyMove(executionId, t.id, taskMove({ kind: 'stopPending', now: this.now() }));
        cursor = page.cursor;
      } while (cursor);
    }
    return this.settle(executionId, true);
  }

  // ---- task logs ----------------------------------------------------------------------------

  async appendTaskLog(executionId: string, taskId: number, segment: TaskLogSegment): Promise<void> {
    await this.logs.append(executionId, taskId, segment);
  }

  async taskLog(executionId: string, taskId: number): Promise<string[]> {
    return this.logs.lines(executionId, taskId);
  }

  // ---- drift --------------------------------------------------------------------------------

  async recordDrift(report: DriftReport): Promise<void> {
    // One item per rule; a report taken earlier than the one kept (two reconciles finishing out of order) is dropped.
    const kept = await conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { PK: `DRIFT#${report.rule}`, SK: 'LAST', takenAt: report.takenAt, report: JSON.stringify(report) },
          ConditionExpression: 'attribute_not_exists(PK) OR takenAt <= :t',
          ExpressionAttributeValues: { ':t': report.takenAt },
        }),
      ),
    );
    if (kept) this.onDrift?.(report);
  }

  async lastDrift(rule: string): Promise<DriftReport | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `DRIFT#${rule}`, SK: 'LAST' }, ConsistentRead: true }));
    return typeof r.Item?.report === 'string' ? (JSON.parse(r.Item.report) as DriftReport) : undefined;
  }

  // ---- referrers ----------------------------------------------------------------------------

  async recordReferrers(target: ReferrerTarget, referrers: readonly RecordedReferrer[]): Promise<void> {
    // One item per referrer: a put is idempotent, and two copiers recording at once both land.
    const pk = `REFERRERS#${referrerTargetKey(target)}`;
    await Promise.all(
      referrers.map((r) =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { PK: pk, SK: `REF#${r.digest}`, digest: r.digest, subject: r.subject, depth: r.depth, ...(r.tag !== undefined ? { tag: r.tag } : {}) },
          }),
        ),
      ),
    );
  }

  async recordedReferrers(target: ReferrerTarget, limit = 10_000): Promise<RecordedReferrer[]> {
    const out: RecordedReferrer[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ref)',
          ExpressionAttributeValues: { ':pk': `REFERRERS#${referrerTargetKey(target)}`, ':ref': 'REF#' },
          ConsistentRead: true,
          Limit: Math.min(1000, limit - out.length),
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) {
        out.push({ digest: String(i.digest), subject: String(i.subject), depth: Number(i.depth ?? 0), ...(typeof i.tag === 'string' ? { tag: i.tag } : {}) });
      }
      start = r.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out;
  }

  async forgetReferrers(target: ReferrerTarget, digests: readonly string[]): Promise<void> {
    const pk = `REFERRERS#${referrerTargetKey(target)}`;
    await Promise.all(digests.map((d) => this.doc.send(new DeleteCommand({ TableName: this.table, Key: { PK: pk, SK: `REF#${d}` } }))));
  }
}

/** Counter shards per execution: enough to spread 100k task updates, few to sum on read. */
const SHARDS = 16;

/** What an execution's counter shards hold: its task counts and its bytes. */
type Tally = TaskCounts & { bytes: number };

/** The statuses counted with a COUNT query (Success is read to sum its bytes). */
const OTHER_STATUSES = TASK_STATUSES.filter((s) => s !== 'Success');

const taskSk = (n: number) => `TASK#${String(n).padStart(9, '0')}`;

function taskItem(t: Task): Record<string, unknown> {
  return {
    PK: `EXEC#${t.executionId}`,
    SK: taskSk(t.id),
    n: t.id,
    operation: t.operation,
    source: t.source,
    destination: t.destination,
    digest: t.digest,
    status: t.status,
    statusText: t.statusText,
    error: t.error,
    attempts: t.attempts,
    revision: t.revision,
    requeues: t.requeues,
    queuedAt: t.queuedAt,
    bytes: t.bytes,
    startTime: t.startTime,
    endTime: t.endTime,
    accessories: t.accessories,
    GSI3PK: `EXEC#${t.executionId}#${t.status}`,
    GSI3SK: taskSk(t.id),
  };
}

function toTask(i: Record<string, unknown>): Task {
  return {
    executionId: String(i.PK).slice('EXEC#'.length),
    id: Number(i.n),
    operation: i.operation as Task['operation'],
    source: i.source as Task['source'],
    destination: i.destination as Task['destination'],
    digest: i.digest as string | undefined,
    status: i.status as TaskStatus,
    statusText: i.statusText as string | undefined,
    ...(isTaskError(i.error) ? { error: { code: i.error.code, message: i.error.message } } : {}),
    attempts: Number(i.attempts ?? 0),
    revision: Number(i.revision ?? 0),
    requeues: Number(i.requeues ?? 0),
    bytes: Number(i.bytes ?? 0),
    startTime: i.startTime as string | undefined,
    endTime: i.endTime as string | undefined,
    leaseUntil: i.lease === undefined ? undefined : Number(i.lease),
    leaseToken: i.leaseToken as string | undefined,
    queuedAt: i.queuedAt === undefined ? undefined : Number(i.queuedAt),
    lastMove: i.lastMove as string | undefined,
    ...(Array.isArray(i.checkpoint) && i.checkpoint.length > 0 ? { checkpoint: i.checkpoint as Task['checkpoint'] } : {}),
    ...(isCounts(i.referrers) ? { referrers: { copied: i.referrers.copied, in_sync: i.referrers.in_sync, failed: i.referrers.failed } } : {}),
    ...(Array.isArray(i.referrerDigests) && i.referrerDigests.length > 0 ? { referrerDigests: i.referrerDigests as string[] } : {}),
    ...(Array.isArray(i.accessories) ? { accessories: i.accessories as Task['accessories'] } : {}),
  };
}

function isCounts(v: unknown): v is { copied: number; in_sync: number; failed: number } {
  const c = v as { copied?: unknown; in_sync?: unknown; failed?: unknown } | null;
  return typeof c === 'object' && c !== null && typeof c.copied === 'number' && typeof c.in_sync === 'number' && typeof c.failed === 'number';
}

/** Attribute names of the fields a move writes (`lease` for leaseUntil, as the item has always had it). */
const ATTRIBUTE: Record<keyof TaskWrite, string> = {
  leaseToken: 'leaseToken',
  leaseUntil: 'lease',
  queuedAt: 'queuedAt',
  statusText: 'statusText',
  error: 'error',
  bytes: 'bytes',
  checkpoint: 'checkpoint',
  startTime: 'startTime',
  endTime: 'endTime',
  referrers: 'referrers',
  referrerDigests: 'referrerDigests',
};

/** A move as one conditional UpdateItem: its precondition, the status and fields it writes, the revision it bumps. */
function moveExpression(executionId: string, move: TaskMove, ttl: number | undefined) {
  const names: Record<string, string> = { '#s': 'status', '#rev': 'revision' };
  const values: Record<string, unknown> = { ':to': move.to, ':g': `EXEC#${executionId}#${move.to}`, ':one': 1, ':zero': 0, ':mid': move.id };
  const sets = ['#s = :to', 'GSI3PK = :g', '#rev = if_not_exists(#rev, :zero) + :one', 'lastMove = :mid'];
  const removes: string[] = [];
  let i = 0;
  for (const [field, value] of Object.entries(move.set) as Array<[keyof TaskWrite, unknown]>) {
    if (value === undefined) continue;
    names[`#f${i}`] = ATTRIBUTE[field];
    values[`:f${i}`] = value;
    sets.push(`#f${i} = :f${i}`);
    i++;
  }
  for (const field of move.clear) {
    names[`#f${i}`] = ATTRIBUTE[field];
    removes.push(`#f${i}`);
    i++;
  }
  for (const counter of ['attempts', 'requeues'] as const) {
    if (move.inc[counter]) sets.push(`${counter} = if_not_exists(${counter}, :zero) + :one`);
  }
  if (ttl !== undefined) {
    names['#ttl'] = 'ttl';
    values[':ttl'] = ttl;
    sets.push('#ttl = :ttl');
  }
  const p = move.expect;
  const parts = [`#s IN (${p.statuses.map((st, k) => ((values[`:e${k}`] = st), `:e${k}`)).join(', ')})`];
  if (p.revision !== undefined) {
    values[':rev'] = p.revision;
    parts.push('#rev = :rev');
  }
  if (p.leaseToken !== undefined) {
    values[':tok'] = p.leaseToken;
    parts.push('leaseToken = :tok');
  }
  if (p.leaseEndedBefore !== undefined) {
    values[':leb'] = p.leaseEndedBefore;
    parts.push('lease < :leb');
  }
  let condition = parts.join(' AND ');
  if (p.orLeaseExpiredBefore !== undefined) {
    values[':running'] = 'Running';
    values[':exp'] = p.orLeaseExpiredBefore;
    condition = `(${condition}) OR (#s = :running AND lease < :exp)`;
  }
  return {
    update: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    condition: `attribute_exists(PK) AND (${condition})`,
    names,
    values,
  };
}

/** What settling needs to know of an execution item. */
function executionFacts(i: Record<string, unknown>): ExecutionFacts {
  return {
    status: i.status as ExecutionStatus,
    planned: Boolean(i.planned),
    planError: typeof i.planError === 'string' ? i.planError : i.planError === true ? String(i.statusText ?? 'planning failed') : undefined,
    stopRequested: Boolean(i.stopRequested),
  };
}

function toExecution(i: Record<string, unknown>, counts: TaskCounts, bytes: number): Execution {
  const planned = Boolean(i.planned);
  const stored = i.status as ExecutionStatus;
  return {
    id: String(i.id),
    rule: String(i.rule),
    trigger: i.trigger as Trigger,
    // Final statuses are written once, by settleExecution, after a recount.
    status: stored,
    statusText: i.statusText as string | undefined,
    counts,
    bytes,
    planned,
    stopRequested: Boolean(i.stopRequested),
    startTime: String(i.start),
    endTime: i.endTime as string | undefined,
    planLeaseUntil: i.planLease === undefined ? undefined : Number(i.planLease),
    replans: Number(i.replans ?? 0),
  };
}

/** The key attributes a cursor may hold (the table's and its indexes'), all strings. */
const CURSOR_KEYS = new Set(['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK', 'GSI3PK', 'GSI3SK']);

/** A cursor back into a key, checked to be one of `input`'s: its partition, key attributes only. */
function decodeCursor(cursor: string, input: QueryCommandInput): Record<string, unknown> {
  const key = decodeJsonCursor(cursor);
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw new InvalidCursorError();
  const entries = Object.entries(key);
  if (entries.length === 0 || entries.some(([k, v]) => !CURSOR_KEYS.has(k) || typeof v !== 'string')) throw new InvalidCursorError();
  // The partition the query reads: `GSI1PK = :pk` (or `PK = :pk AND ...`).
  const partition = /^(\w+) = :pk\b/.exec(input.KeyConditionExpression ?? '')?.[1];
  if (!partition || (key as Record<string, unknown>)[partition] !== input.ExpressionAttributeValues?.[':pk']) throw new InvalidCursorError();
  return key as Record<string, unknown>;
}

/** A query whose start key DynamoDB refuses (a forged cursor of the right shape) is a bad cursor, not a failure. */
async function queryPage(doc: DynamoDBDocumentClient, input: QueryCommandInput) {
  try {
    return await doc.send(new QueryCommand(input));
  } catch (err) {
    if (input.ExclusiveStartKey && (err as Error).name === 'ValidationException') throw new InvalidCursorError();
    throw err;
  }
}

/** Creates the table with its indexes when it does not exist (on-demand capacity). */
export async function ensureTable(client: DynamoDBClient, table: string): Promise<void> {
  const gsi = (name: string, pk: string, sk: string) => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: pk, KeyType: 'HASH' as const },
      { AttributeName: sk, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  const attrs = ['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK', 'GSI3PK', 'GSI3SK', 'APK', 'ASK'];
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attrs.map((a) => ({ AttributeName: a, AttributeType: 'S' as const })),
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [gsi('GSI1', 'GSI1PK', 'GSI1SK'), gsi('GSI2', 'GSI2PK', 'GSI2SK'), gsi('GSI3', 'GSI3PK', 'GSI3SK'), gsi('GSI4', 'APK', 'ASK')],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    if (d.Table?.TableStatus === 'ACTIVE') return;
    await sleep(100);
  }
  throw new Error(`table ${table} did not become ACTIVE`);
}

function isTaskError(v: unknown): v is TaskError {
  return typeof v === 'object' && v !== null && typeof (v as TaskError).code === 'string' && typeof (v as TaskError).message === 'string';
}
