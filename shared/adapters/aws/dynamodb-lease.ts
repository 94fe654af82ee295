import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LeaseStore } from '../../copy/keyed-lock.js';
import { conditionally } from './dynamodb-conditional.js';
import { DynamoDBTable } from './dynamodb-table.js';

/** Lease records outlive their use by an hour, then TTL removes them. */
const KEEP_SECONDS = 3_600;

/**
 * Short leases in the task store's table (`LOCK#<key>` / `LEASE`), the pattern of the transfer
 * slots: taken by a conditional put when absent or expired, renewed and deleted only by their
 * owner. What keeps Lambda copiers from updating one destination `sha256-<hex>` referrers index
 * at the same time (copy/keyed-lock.ts LeasedKeyedLock).
 */
export class DynamoDBLeases extends DynamoDBTable implements LeaseStore {
  private key(key: string) {
    return { PK: `LOCK#${key}`, SK: 'LEASE' };
  }

  acquire(key: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...this.key(key), owner, expires: now + leaseMs, ttl: Math.floor(now / 1000) + KEEP_SECONDS },
          ConditionExpression: 'attribute_not_exists(PK) OR #x < :now',
          ExpressionAttributeNames: { '#x': 'expires' },
          ExpressionAttributeValues: { ':now': now },
        }),
      ),
    );
  }

  renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(key),
          UpdateExpression: 'SET #x = :e',
          ConditionExpression: 'attribute_exists(PK) AND #o = :o',
          ExpressionAttributeNames: { '#o': 'owner', '#x': 'expires' },
          ExpressionAttributeValues: { ':e': this.now() + leaseMs, ':o': owner },
        }),
      ),
    );
  }

  async release(key: string, owner: string): Promise<void> {
    await conditionally(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: this.key(key),
          ConditionExpression: '#o = :o',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': owner },
        }),
      ),
    );
  }
}
