import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The document client of a DynamoDB table (undefined attributes dropped on write). */
export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** What each adapter of the replicator's one table holds: its document client, the table's name and a clock. */
export abstract class DynamoDBTable {
  protected readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    protected readonly table: string,
    protected readonly now: () => number = Date.now,
  ) {
    this.doc = documentClient(client);
  }
}
