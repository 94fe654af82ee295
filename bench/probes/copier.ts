// A stand-in for the copier Lambda while functions/lambda/copier.ts is being written: what it
// will import and create at cold start (the engine's worker and copy, the DynamoDB store, SQS,
// Secrets Manager, ECR, Powertools), so bench/bundle-bench.ts can weigh the AWS SDK bundled
// against external before the handler exists. Never deployed.
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBTaskStore } from '../../shared/adapters/dynamodb-store.js';
import { processTask } from '../../shared/executions/worker.js';
import { parseConfig } from '../../shared/rules/load-config.js';
import { ruleRuntime } from '../../shared/rules/rule-runtime.js';

const logger = new Logger();
const metrics = new Metrics();
const tracer = new Tracer();
const dynamodb = tracer.captureAWSv3Client(new DynamoDBClient({}));
const clients = { sqs: new SQSClient({}), secrets: new SecretsManagerClient({}), ecr: new ECRClient({}) };
const processor = new BatchProcessor(EventType.SQS);

export const handler = async (event: never, context: never) => {
  const config = parseConfig(process.env.REPLICATOR_CONFIG ?? '{}', 'baked');
  logger.info('probe', { rules: config.config.rules.length, table: typeof DynamoDBTaskStore, dynamodb: typeof dynamodb });
  metrics.addMetric('TasksSucceeded', 'Count', 0);
  return processPartialResponse(event, async () => [processTask, ruleRuntime, clients], processor, { context });
};
