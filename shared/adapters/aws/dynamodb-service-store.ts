import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DeliveryLog } from '../../executions/ports.js';
import type { ConfigStore } from '../../rules/ports.js';
import { conditionally } from './dynamodb-conditional.js';
import { DynamoDBTable } from './dynamodb-table.js';

type Kind = 'registry' | 'rule';

/**
 * Webhook deliveries and API-managed registries and rules, in the task store's table:
 * `EVENT#<key>` / `DELIVERY` (conditional put, TTL), `REGISTRY#<name>` and `RULE#<name>` /
 * `CONFIG` (listed through GSI2 under `CONFIG#<kind>`).
 */
export class DynamoDBServiceStore extends DynamoDBTable implements DeliveryLog, ConfigStore {
  claimDelivery(key: string, ttlSeconds: number): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { PK: `EVENT#${key}`, SK: 'DELIVERY', executions: [], ttl: Math.floor(this.now() / 1000) + ttlSeconds },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      ),
    );
  }

  async recordDelivery(key: string, executionIds: string[]): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { PK: `EVENT#${key}`, SK: 'DELIVERY' },
        UpdateExpression: 'SET executions = :e',
        ExpressionAttributeValues: { ':e': executionIds },
      }),
    );
  }

  async deliveryExecutions(key: string): Promise<string[]> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `EVENT#${key}`, SK: 'DELIVERY' }, ConsistentRead: true }));
    return (r.Item?.executions as string[] | undefined) ?? [];
  }

  async releaseDelivery(key: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { PK: `EVENT#${key}`, SK: 'DELIVERY' } }));
  }

  async listEntries(kind: Kind): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'GSI2',
          KeyConditionExpression: 'GSI2PK = :pk',
          ExpressionAttributeValues: { ':pk': `CONFIG#${kind}` },
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) out.push(i.value as Record<string, unknown>);
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async getEntry(kind: Kind, name: string): Promise<Record<string, unknown> | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: { PK: `${kind.toUpperCase()}#${name}`, SK: 'CONFIG' }, ConsistentRead: true }));
    return r.Item?.value as Record<string, unknown> | undefined;
  }

  putEntry(kind: Kind, name: string, value: Record<string, unknown>, mode: 'create' | 'replace'): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { PK: `${kind.toUpperCase()}#${name}`, SK: 'CONFIG', GSI2PK: `CONFIG#${kind}`, GSI2SK: name, value },
          ConditionExpression: mode === 'create' ? 'attribute_not_exists(PK)' : 'attribute_exists(PK)',
        }),
      ),
    );
  }

  deleteEntry(kind: Kind, name: string): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new DeleteCommand({ TableName: this.table, Key: { PK: `${kind.toUpperCase()}#${name}`, SK: 'CONFIG' }, ConditionExpression: 'attribute_exists(PK)' }),
      ),
    );
  }
}
