// The Lambda API and receiver as an untrusted caller meets them (issue 10): the API handler
// driven with API Gateway events against dynalite, Secrets Manager contract-tested with
// aws-sdk-client-mock. Literal credentials go to Secrets Manager under the prefix and only the
// reference is stored; references outside the prefix, environment and file references, loopback
// and link-local URLs are refused; the receiver serves the webhook route only.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import dynalite from 'dynalite';
import { ensureTable } from '../shared/adapters/aws/dynamodb-store.js';
import { DynamoDBServiceStore } from '../shared/adapters/aws/dynamodb-service-store.js';
import { startListener, type RecordingListener } from './support/listener.js';

const TABLE = 'harbor-replicator-api-test';
const PREFIX = 'harbor-replicator/Test/api/';
const LITERAL = 'literal-robot-s3cret-0a1b2c';
const WEBHOOK_AUTH = 'Bearer receiver-s3cret';

type HttpHandler = (event: Record<string, unknown>, context: Context) => Promise<{ statusCode: number; body: string }>;

const context = (name: string): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName: name,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
  memoryLimitInMB: '256',
  awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
  logGroupName: `/aws/lambda/${name}`,
  logStreamName: 'test',
  getRemainingTimeInMillis: () => 29_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
});

/** An API Gateway HTTP API (payload 2.0) event. */
function httpEvent(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.us-east-1.amazonaws.com', 'content-type': 'application/json', ...headers },
    requestContext: {
      accountId: '000000000000',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'test' },
      requestId: `r-${Math.random().toString(36).slice(2)}`,
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: text,
    isBase64Encoded: false,
  };
}

describe('Lambda API: API-managed credentials and URLs (dynalite, Secrets Manager mocked)', () => {
  let db: ReturnType<typeof dynalite>;
  let dynamo: DynamoDBClient;
  let api: HttpHandler;
  let receiver: HttpHandler;
  let listener: RecordingListener;
  const secrets = mockClient(SecretsManagerClient);
  const scheduler = mockClient(SchedulerClient);
  const savedEnv = { ...process.env };

  const call = async (handler: HttpHandler, method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await handler(httpEvent(method, path, body, headers), context('api'));
    let parsed: any;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, body: parsed, text: res.body };
  };
  const tableText = async () => JSON.stringify((await dynamo.send(new ScanCommand({ TableName: TABLE }))).Items);

  before(async () => {
    listener = await startListener();
    db = dynalite({ createTableMs: 0 });
    await new Promise<void>((ok) => db.listen(0, '127.0.0.1', () => ok()));
    const endpoint = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
    dynamo = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await ensureTable(dynamo, TABLE);
    // Entries past today's API checks (another version, someone with table access): a loopback URL.
    await new DynamoDBServiceStore(dynamo, TABLE).putEntry(
      'registry',
      'on-loopback',
      { name: 'on-loopback', type: 'docker-registry', url: listener.url, credential: { username: 'robot', password: { secret: `${PREFIX}on-loopback` } } },
      'create',
    );
    scheduler.on(ListSchedulesCommand).resolves({ Schedules: [] });
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'from-secrets-manager' });
    const config = {
      registries: [{ name: 'hq', type: 'docker-registry', url: 'https://hq.example.com', credential: { username: 'robot', password: { secret: 'prod/hq-robot' } } }],
      rules: [],
      webhook: { auth_header: { env: 'HR_LAMBDA_API_WEBHOOK_AUTH' } },
      api: { allowed_secrets: ['team/allowed'] },
    };
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      TABLE_NAME: TABLE,
      EXECUTION_QUEUE_URL: 'http://127.0.0.1:9/000000000000/executions',
      TASK_QUEUE_URL: 'http://127.0.0.1:9/000000000000/tasks',
      SCHEDULE_GROUP: 'group',
      SCHEDULER_ROLE_ARN: 'arn:aws:iam::000000000000:role/scheduler',
      EXECUTION_QUEUE_ARN: 'arn:aws:sqs:us-east-1:000000000000:executions',
      API_SECRET_PREFIX: PREFIX,
      REPLICATOR_CONFIG: JSON.stringify(config),
      HR_LAMBDA_API_WEBHOOK_AUTH: WEBHOOK_AUTH,
      POWERTOOLS_LOG_LEVEL: process.env.HR_TEST_LOG_LEVEL ?? 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    const [a, w] = await Promise.all([import('../functions/lambda/api.js'), import('../functions/lambda/webhook.js')]);
    api = a.handler as unknown as HttpHandler;
    receiver = w.handler as unknown as HttpHandler;
  });
  after(async () => {
    secrets.restore();
    scheduler.restore();
    dynamo?.destroy();
    await new Promise<void>((ok) => (db ? db.close(() => ok()) : ok()));
    await listener?.stop();
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
  });

  it('a literal credential is written to Secrets Manager under the prefix (CreateSecret, tagged); only the reference is stored; GET shows has_secret', async () => {
    secrets.on(CreateSecretCommand).resolves({ ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${PREFIX}branch-AbCdEf`, Name: `${PREFIX}branch` });
    const created = await call(api, 'POST', '/api/v1/registries', { name: 'branch', type: 'harbor', url: 'https://10.20.30.40', credential: { type: 'basic', access_key: 'robot$branch', access_secret: LITERAL } });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.body.credential, { type: 'basic', access_key: 'robot$branch', has_secret: true });
    assert.deepEqual(
      secrets.commandCalls(CreateSecretCommand).map((c) => c.args[0].input),
      [
        {
          Name: `${PREFIX}branch`,
          SecretString: LITERAL,
          Tags: [
            { Key: 'harbor-replicator:managed-by', Value: 'api' },
            { Key: 'harbor-replicator:registry', Value: 'branch' },
          ],
        },
      ],
    );
    const table = await tableText();
    assert.ok(table.includes(`${PREFIX}branch`), 'the reference is stored');
    assert.ok(!table.includes(LITERAL), 'the literal is not');
    const got = await call(api, 'GET', '/api/v1/registries/branch');
    assert.deepEqual(got.body.credential, { type: 'basic', access_key: 'robot$branch', has_secret: true });
    assert.ok(!got.text.includes(LITERAL) && !got.text.includes('access_secret'));

    // A PUT without access_secret keeps it: nothing written.
    secrets.resetHistory();
    const kept = await call(api, 'PUT', '/api/v1/registries/branch', { name: 'branch', type: 'harbor', url: 'https://10.20.30.40', description: 'x', credential: { type: 'basic', access_key: 'robot$branch' } });
    assert.equal(kept.status, 200, kept.text);
    assert.equal(secrets.commandCalls(CreateSecretCommand).length + secrets.commandCalls(PutSecretValueCommand).length, 0);
    // A new one: the secret exists, so its value is put.
    secrets.on(CreateSecretCommand).rejects(new ResourceExistsException({ message: 'exists', $metadata: {} }));
    secrets.on(PutSecretValueCommand).resolves({});
    const rotated = await call(api, 'PUT', '/api/v1/registries/branch', { name: 'branch', type: 'harbor', url: 'https://10.20.30.40', credential: { type: 'basic', access_key: 'robot$branch', access_secret: 'new-s3cret' } });
    assert.equal(rotated.status, 200, rotated.text);
    assert.deepEqual(secrets.commandCalls(PutSecretValueCommand).map((c) => c.args[0].input), [{ SecretId: `${PREFIX}branch`, SecretString: 'new-s3cret' }]);
    assert.ok(!(await tableText()).includes('new-s3cret'));
  });

  it('environment, file and Docker config credentials, and {secret} outside the prefix and api.allowed_secrets: 400 naming the field, nothing written', async () => {
    secrets.resetHistory();
    const refused: Array<[unknown, RegExp]> = [
      [{ username: 'x', password: { env: 'AWS_SECRET_ACCESS_KEY' } }, /^credential\.password: references of kind env are not allowed through the API/],
      [{ username: 'x', password: { file: '/proc/self/environ' } }, /^credential\.password: references of kind file are not allowed/],
      [{ docker_config: true }, /^credential\.docker_config:/],
      [{ username: 'x', password: { secret: 'prod/hq-robot' } }, /^credential\.password: \{secret: prod\/hq-robot\} is neither under the API's secret prefix harbor-replicator\/Test\/api\/ nor listed in api\.allowed_secrets/],
      [{ username: 'x', password: { secret: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:harbor-replicator/Test/api/x-AbCdEf' } }, /is neither under/],
    ];
    for (const [credential, message] of refused) {
      const r = await call(api, 'POST', '/api/v1/registries', { name: 'evil', type: 'docker-registry', url: 'https://10.0.0.9', credential });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error.message, message);
    }
    assert.equal((await call(api, 'GET', '/api/v1/registries/evil')).status, 404);
    for (const [name, secret] of [
      ['allowed', 'team/allowed'],
      ['prefixed', `${PREFIX}shared-robot`],
    ]) {
      const r = await call(api, 'POST', '/api/v1/registries', { name, type: 'docker-registry', url: 'https://10.0.0.9', credential: { username: 'x', password: { secret } } });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.body.credential, { username: 'x', password: { secret } });
    }
    assert.equal(secrets.commandCalls(CreateSecretCommand).length + secrets.commandCalls(PutSecretValueCommand).length, 0);
  });

  it('loopback (the Lambda runtime API lives there) and link-local URLs: 400 URL_REFUSED before anything is written', async () => {
    secrets.resetHistory();
    for (const url of [listener.url, `http://localhost:${listener.port}`, 'http://169.254.169.254', 'http://[::1]:9001']) {
      const r = await call(api, 'POST', '/api/v1/registries', { name: 'runtime', type: 'docker-registry', url, credential: { type: 'basic', access_key: 'a', access_secret: 'b' } });
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      assert.equal(r.body.error.code, 'URL_REFUSED');
    }
    assert.equal(secrets.commandCalls(CreateSecretCommand).length, 0);
    assert.equal(listener.connections, 0);
  });

  it('an entry stored past the API checks, on loopback: ping gives URL_REFUSED and no connection is made', async () => {
    const r = await call(api, 'POST', '/api/v1/registries/on-loopback/ping');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: false, status: null, code: 'URL_REFUSED' });
    assert.equal(listener.connections, 0);
    assert.ok(secrets.commandCalls(GetSecretValueCommand).some((c) => c.args[0].input.SecretId === `${PREFIX}on-loopback`), 'its credential was read from Secrets Manager by its reference');
  });

  it('an API rule with reconcile: gets the schedule api-reconcile-<rule>; a clashing schedule name or a cron EventBridge cannot run is refused before anything is stored', async () => {
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    const created = await call(api, 'POST', '/api/v1/rules', { name: 'watch', src_registry: 'hq', dest_registry: 'hq', dest_namespace: 'w', reconcile: { cron: '0 3 * * *', timezone: 'Europe/Berlin' } });
    assert.equal(created.status, 201, created.text);
    const schedule = scheduler.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input).find((i) => i.Name === 'api-reconcile-watch');
    assert.equal(schedule?.ScheduleExpression, 'cron(0 3 * * ? *)');
    assert.equal(schedule?.ScheduleExpressionTimezone, 'Europe/Berlin');
    assert.equal(schedule?.Target?.Input, JSON.stringify({ scheduledRule: 'watch', reconcile: true }));

    const clash = await call(api, 'POST', '/api/v1/rules', { name: 'reconcile-watch', src_registry: 'hq', dest_registry: 'hq', dest_namespace: 'x', trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 4 * * *' } } });
    assert.equal(clash.status, 400, clash.text);
    assert.match(clash.body.error.message, /rule "watch" \(reconcile\) and rule "reconcile-watch" would share the EventBridge schedule api-reconcile-watch/);
    const inexpressible = await call(api, 'POST', '/api/v1/rules', { name: 'both-days', src_registry: 'hq', dest_registry: 'hq', reconcile: { cron: '0 0 2 1 * 1' } });
    assert.equal(inexpressible.status, 400, inexpressible.text);
    assert.match(inexpressible.body.error.message, /^rule "both-days"\.reconcile\.cron: EventBridge Scheduler cannot run "0 0 2 1 \* 1"/);
    const names = (await call(api, 'GET', '/api/v1/rules')).body.items.map((r: { name: string }) => r.name);
    assert.deepEqual(names, ['watch'], 'nothing else stored');
  });

  it('the receiver serves the webhook route only: /api/v1 is 404 there; the API function does not serve the webhook', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/registries'],
      ['POST', '/api/v1/registries'],
      ['GET', '/api/v1/executions'],
      ['GET', '/api/v1/openapi.json'],
    ] as const) {
      const r = await call(receiver, method, path, method === 'POST' ? { name: 'x', type: 'docker-registry', url: 'https://10.0.0.1' } : undefined, { authorization: WEBHOOK_AUTH });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    }
    assert.equal((await call(receiver, 'POST', '/webhooks/harbor', {}, { authorization: 'Bearer wrong' })).status, 401, 'the webhook route is there');
    assert.equal((await call(api, 'POST', '/webhooks/harbor', {}, { authorization: WEBHOOK_AUTH })).status, 404);
    assert.equal((await call(api, 'GET', '/api/v1/registries')).status, 200);
  });
});
