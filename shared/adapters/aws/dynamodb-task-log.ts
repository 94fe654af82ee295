import { DeleteCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { boundLog, segmentLines, segmentRecord, shadowedRuns, type TaskLogSegment } from '../../executions/task-log.js';
import { conditionally } from './dynamodb-conditional.js';

/**
 * Task logs in the store's table, beside the task (same partition, `EXEC#<id>`):
 *
 * | item | PK | SK | attributes |
 * | --- | --- | --- | --- |
 * | one run's lines | `EXEC#<id>` | `LOG#<task, 9 digits>#<run, 9 digits>` | `text` (lines, newline-separated), `n` (lines), `size` (bytes), `ttl` |
 *
 * Written once per run, when it ends or hands over (a conditional put: a repeated write of the
 * same run is a no-op), never by the task's moves, so a move's write costs what it always did
 * (a 64 KiB log in the task item would be rewritten, and paid for, by every move and heartbeat).
 * A run costs that one put; only the run that ends a task which ran before (a retry, a
 * handover) also reads its runs' sizes and deletes those newer ones have made invisible (until
 * then a task's items are few and each bounded, and they expire). Read with one query of the
 * task's `LOG#` items, in run order, bounded.
 *
 * Expiry (`ttl`, the table's TTL attribute): a run that ends the task gets the task's own expiry
 * (the retention from now, as its final move sets); an earlier run (a retry, a handover) gets a
 * day more, so it outlives the task rather than leaving a log with a hole. The API shows a log
 * only for a task that exists.
 */
export class DynamoDBTaskLogs {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    /** The expiry (epoch seconds) of an item of a finished task written now; undefined: kept. */
    private readonly expiry: () => number | undefined,
  ) {}

  async append(executionId: string, taskId: number, segment: TaskLogSegment): Promise<void> {
    const r = segmentRecord(segment.lines);
    const ends = this.expiry();
    const ttl = ends === undefined ? undefined : segment.final ? ends : ends + EARLIER_RUN_SLACK_S;
    const written = await conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { PK: `EXEC#${executionId}`, SK: logSk(taskId, segment.run), text: r.text, n: r.lines, size: r.bytes, ...(ttl === undefined ? {} : { ttl }) },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      ),
    );
    // A task's first run (revision 1 after its claim) has nothing before it to make invisible;
    // the runs of a task still going are tidied by the run that ends it.
    if (!written || segment.run <= 1 || segment.first || !segment.final) return;
    const sizes = (await this.query(executionId, taskId, 'SK, n, #size')).map((i) => ({ run: runOf(String(i.SK)), lines: Number(i.n ?? 0), bytes: Number(i.size ?? 0) }));
    for (const run of shadowedRuns(sizes)) {
      await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { PK: `EXEC#${executionId}`, SK: logSk(taskId, run) } }));
    }
  }

  async lines(executionId: string, taskId: number): Promise<string[]> {
    const items = await this.query(executionId, taskId, '#text');
    return boundLog(items.flatMap((i) => (typeof i.text === 'string' ? segmentLines(i.text) : [])));
  }

  /** The task's log items in run order (a few: older ones are deleted; pages bounded anyway). */
  private async query(executionId: string, taskId: number, projection: string): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :log)',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}`, ':log': logPrefix(taskId) },
          ProjectionExpression: projection,
          ExpressionAttributeNames: projection.includes('#size') ? { '#size': 'size' } : { '#text': 'text' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      out.push(...(r.Items ?? []));
      start = r.LastEvaluatedKey;
      if (!start) break;
    }
    return out;
  }
}

/** Earlier runs' lines outlive the task's own expiry by this much (see the class). */
export const EARLIER_RUN_SLACK_S = 86_400;
/** Pages of a task's log items read at most (each up to 1 MB; a log is about 64 KiB). */
const MAX_PAGES = 10;

const logPrefix = (taskId: number) => `LOG#${String(taskId).padStart(9, '0')}#`;
const logSk = (taskId: number, run: number) => `${logPrefix(taskId)}${String(run).padStart(9, '0')}`;
const runOf = (sk: string) => Number(sk.slice(sk.lastIndexOf('#') + 1));
