import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ThrottleRecord, ThrottleStore, Versioned } from '../../registry/host-throttle.js';
import type { BudgetStore } from '../../registry/shared-budget.js';
import { conditionally } from './dynamodb-conditional.js';
import { DynamoDBTable } from './dynamodb-table.js';

/** Records outlive their use by a day, then TTL removes them. */
const KEEP_SECONDS = 86_400;
/** Compare-and-set tries on a contended bucket before the caller waits a moment. */
const BUCKET_TRIES = 5;

/**
 * Limits shared by every Lambda copier, in the task store's table: `THROTTLE#<origin>` /
 * `THROTTLE` (a host's throttle, versioned), `BUDGET#<key>` / `TOKENS` (a token bucket) and
 * `BUDGET#<key>` / `SLOT#<n>` (transfer slots, leased). Every write is conditional on what was
 * read, so copiers racing on one record never both win.
 */
export class DynamoDBSharedLimits extends DynamoDBTable implements ThrottleStore, BudgetStore {
  private ttl(): number {
    return Math.floor(this.now() / 1000) + KEEP_SECONDS;
  }

  async read(host: string): Promise<Versioned<ThrottleRecord> | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `THROTTLE#${host}`, SK: 'THROTTLE' }, ConsistentRead: true }));
    const i = r.Item;
    if (!i) return undefined;
    return {
      value: { until: Number(i.until), level: Number(i.level), probeOwner: i.probeOwner as string | undefined, probeExpires: i.probeExpires as number | undefined },
      version: Number(i.version),
    };
  }

  write(host: string, next: ThrottleRecord, version: number | undefined): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { PK: `THROTTLE#${host}`, SK: 'THROTTLE', ...next, version: (version ?? 0) + 1, ttl: this.ttl() },
          ...(version === undefined
            ? { ConditionExpression: 'attribute_not_exists(PK)' }
            : { ConditionExpression: '#v = :v', ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: { ':v': version } }),
        }),
      ),
    );
  }

  clear(host: string, version: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { PK: `THROTTLE#${host}`, SK: 'THROTTLE' },
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'version' },
          ExpressionAttributeValues: { ':v': version },
        }),
      ),
    );
  }

  async takeTokens(key: string, perSecond: number, want: number): Promise<{ granted: number; waitMs: number }> {
    const burst = Math.max(1, perSecond);
    const Key = { PK: `BUDGET#${key}`, SK: 'TOKENS' };
    for (let attempt = 0; attempt < BUCKET_TRIES; attempt++) {
      const r = await this.doc.send(new GetCommand({ TableName: this.table, Key, ConsistentRead: true }));
      const at = r.Item ? Number(r.Item.at) : undefined;
      // Another copier's clock may run ahead: never refill for time before the last take.
      const now = Math.max(this.now(), at ?? 0);
      const tokens = r.Item ? Math.min(burst, Number(r.Item.tokens) + ((now - at!) / 1000) * perSecond) : burst;
      if (tokens < 1) return { granted: 0, waitMs: Math.ceil(((1 - tokens) / perSecond) * 1000) };
      const granted = Math.min(want, Math.floor(tokens));
      const taken = await conditionally(() =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...Key, tokens: tokens - granted, at: now, ttl: this.ttl() },
            ...(at === undefined
              ? { ConditionExpression: 'attribute_not_exists(PK)' }
              : { ConditionExpression: '#at = :at', ExpressionAttributeNames: { '#at': 'at' }, ExpressionAttributeValues: { ':at': at } }),
          }),
        ),
      );
      if (taken) return { granted, waitMs: 0 };
    }
    // Contended: let the others have this round.
    return { granted: 0, waitMs: 20 + Math.floor(Math.random() * 30) };
  }

  async acquireSlot(key: string, max: number, owner: string, leaseMs: number): Promise<number | undefined> {
    const now = this.now();
    const held = new Set<number>();
    let last: Record<string, unknown> | undefined;
    // Slots are few (max_concurrency <= 256): one query reads them all.
    for (let page = 0; page < 4; page++) {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :slot)',
          ExpressionAttributeValues: { ':pk': `BUDGET#${key}`, ':slot': 'SLOT#' },
          ConsistentRead: true,
          ...(last ? { ExclusiveStartKey: last } : {}),
        }),
      );
      for (const i of r.Items ?? []) if (Number(i.expires) > now) held.add(Number(String(i.SK).slice(5)));
      last = r.LastEvaluatedKey;
      if (!last) break;
    }
    const free = Array.from({ length: max }, (_, i) => i).filter((i) => !held.has(i));
    // Copiers that read the same free slots try them in different orders.
    for (let tries = 0; tries < 3 && free.length > 0; tries++) {
      const slot = free.splice(Math.floor(Math.random() * free.length), 1)[0]!;
      const taken = await conditionally(() =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { PK: `BUDGET#${key}`, SK: `SLOT#${slot}`, owner, expires: now + leaseMs, ttl: this.ttl() },
            // Our own owner too: an SDK retry of a put that landed takes the slot, not leaks it.
            ConditionExpression: 'attribute_not_exists(PK) OR #x < :now OR #o = :o',
            ExpressionAttributeNames: { '#x': 'expires', '#o': 'owner' },
            ExpressionAttributeValues: { ':now': now, ':o': owner },
          }),
        ),
      );
      if (taken) return slot;
    }
    return undefined;
  }

  renewSlot(key: string, slot: number, owner: string, leaseMs: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { PK: `BUDGET#${key}`, SK: `SLOT#${slot}` },
          UpdateExpression: 'SET #x = :e',
          ConditionExpression: 'attribute_exists(PK) AND #o = :o',
          ExpressionAttributeNames: { '#o': 'owner', '#x': 'expires' },
          ExpressionAttributeValues: { ':e': this.now() + leaseMs, ':o': owner },
        }),
      ),
    );
  }

  async releaseSlot(key: string, slot: number, owner: string): Promise<void> {
    await conditionally(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { PK: `BUDGET#${key}`, SK: `SLOT#${slot}` },
          ConditionExpression: '#o = :o',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': owner },
        }),
      ),
    );
  }
}
