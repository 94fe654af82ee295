// A stand-in for the API Lambda while functions/lambda/api.ts is being written: the Hono app
// behind Hono's Lambda adapter, the frontdoor, the DynamoDB stores, SQS, Scheduler, Secrets
// Manager and Powertools, created at cold start. Never deployed.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { handle } from 'hono/aws-lambda';
import { DynamoDBServiceStore } from '../../shared/adapters/dynamodb-service-store.js';
import { DynamoDBTaskStore } from '../../shared/adapters/dynamodb-store.js';
import { ExecutionFrontdoor } from '../../shared/executions/frontdoor.js';
import { createApp } from '../../shared/http/app.js';
import { ConfigView } from '../../shared/rules/config-view.js';
import { parseConfig } from '../../shared/rules/load-config.js';

const logger = new Logger();
const metrics = new Metrics();
const tracer = new Tracer();
const clients = { dynamodb: tracer.captureAWSv3Client(new DynamoDBClient({})), sqs: new SQSClient({}), scheduler: new SchedulerClient({}), secrets: new SecretsManagerClient({}) };
const used = [DynamoDBServiceStore, DynamoDBTaskStore, ExecutionFrontdoor, ConfigView, createApp, clients, metrics];

export const handler = async (event: never, context: never) => {
  const config = parseConfig(process.env.REPLICATOR_CONFIG ?? '{}', 'baked');
  logger.info('probe', { rules: config.config.rules.length, used: used.length });
  return handle(createApp as never)(event, context);
};
