// The AWS handlers end to end, with the real protocols: DynamoDB through dynalite, SQS through
// fauxqs, real docker-registry servers. A small harness plays the Lambda event sources: it polls
// the queues and invokes the handlers with the event shapes Lambda sends (SQS records, API
// Gateway HTTP API payload 2.0), deleting what succeeded and leaving batch item failures for
// redelivery. Proves: Harbor webhook -> receiver -> execution queue -> planner -> task queue ->
// copier -> image at the destination; a copier failure redelivered and finished; EventBridge
// Scheduler's message starting a scheduled execution; a blob longer
// than an invocation finished across invocations by handover, with the right digest; and task
// logs written as one item per run, when the run ends or hands over, never on each move.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import dynalite from 'dynalite';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { ensureTable } from '../shared/adapters/aws/dynamodb-store.js';
import type { Execution, Task } from '../shared/executions/model.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { blobExists, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const WEBHOOK_AUTH = 'Bearer lambda-webhook-s3cret';
const TABLE = 'harbor-replicator-test';

/** The item keys (PK, SK) a command's input names, wherever they sit (Item, Key, TransactItems). */
function keysOf(input: unknown, out: Array<{ pk: string; sk: string }> = []): Array<{ pk: string; sk: string }> {
  if (Array.isArray(input)) for (const v of input) keysOf(v, out);
  else if (input && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    if (typeof o.PK === 'string' && typeof o.SK === 'string') out.push({ pk: o.PK, sk: o.SK });
    else for (const v of Object.values(o)) keysOf(v, out);
  }
  return out;
}

/** Every write the handlers send through the document client, in order: the command and the items it names. */
const writes: Array<{ command: string; pk: string; sk: string }> = [];
const WRITES = new Set(['PutCommand', 'UpdateCommand', 'DeleteCommand', 'TransactWriteCommand', 'BatchWriteCommand']);
const docSend = DynamoDBDocumentClient.prototype.send;
DynamoDBDocumentClient.prototype.send = function (this: DynamoDBDocumentClient, command: { constructor: { name: string }; input: unknown }, ...rest: unknown[]) {
  if (WRITES.has(command.constructor.name)) for (const k of keysOf(command.input)) writes.push({ command: command.constructor.name, ...k });
  return (docSend as (...a: unknown[]) => unknown).call(this, command, ...rest);
} as typeof docSend;

/** The writes of one task's item and of its log items, in order: `move` (the task) or `log`. */
function taskWrites(executionId: string, taskId: number): Array<'move' | 'log'> {
  const n = String(taskId).padStart(9, '0');
  return writes
    .filter((w) => w.pk === `EXEC#${executionId}` && (w.sk === `TASK#${n}` || w.sk.startsWith(`LOG#${n}#`)))
    .map((w) => (w.sk.startsWith('LOG#') ? 'log' : 'move'));
}

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
type HttpHandler = (event: Record<string, unknown>, context: Context) => Promise<{ statusCode: number; body: string }>;

/** A Lambda context whose deadline is `remainingMs` from now. */
function lambdaContext(name: string, remainingMs = 900_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    memoryLimitInMB: '1024',
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** An API Gateway HTTP API (payload 2.0) event. */
function httpEvent(method: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.us-east-1.amazonaws.com', 'content-type': 'application/json', ...(text ? { 'content-length': String(Buffer.byteLength(text)) } : {}), ...headers },
    requestContext: {
      accountId: '000000000000',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'Harbor-Webhook' },
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

/** Harbor's webhook payload for one artifact (pkg/notifier/formats/default.go). */
function harborPayload(type: string, host: string, repository: string, digest: string, tag: string) {
  return {
    type,
    occur_at: Math.floor(Date.now() / 1000),
    operator: 'admin',
    event_data: {
      resources: [{ digest, tag, resource_url: `${host}/${repository}:${tag}` }],
      repository: { date_created: 1_677_053_165, name: repository.split('/').pop(), namespace: repository.split('/')[0], repo_full_name: repository, repo_type: 'public' },
    },
  };
}

/** What the event-source harness saw for one SQS delivery. */
interface Delivery {
  queue: 'execution' | 'task';
  body: string;
  receiveCount: number;
  failed: boolean;
}

/**
 * Plays Lambda's SQS event sources: receives from each queue (batch 10 for the planner, 1 for
 * the copier), invokes the handler with the records, deletes the records that succeeded.
 * Bounded by invocations and wall time.
 */
class EventSources {
  readonly deliveries: Delivery[] = [];
  copierRemainingMs = 900_000;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queues: { execution: { url: string; arn: string }; task: { url: string; arn: string } },
    private readonly handlers: { planner: SqsHandler; copier: SqsHandler },
  ) {}

  private toEvent(messages: Message[], arn: string): SQSEvent {
    return {
      Records: messages.map((m) => ({
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: 'AIDATEST',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: 'us-east-1',
      })),
    };
  }

  /** One poll of one queue; true when something was delivered. */
  async pollOnce(which: 'execution' | 'task'): Promise<boolean> {
    const q = this.queues[which];
    const r = await this.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: which === 'execution' ? 10 : 1, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'] }),
    );
    const messages = r.Messages ?? [];
    if (messages.length === 0) return false;
    const event = this.toEvent(messages, q.arn);
    const context = which === 'execution' ? lambdaContext('planner') : lambdaContext('copier', this.copierRemainingMs);
    const result = await (which === 'execution' ? this.handlers.planner : this.handlers.copier)(event, context);
    const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
    for (const rec of event.Records) {
      this.deliveries.push({ queue: which, body: rec.body, receiveCount: Number(rec.attributes.ApproximateReceiveCount), failed: failed.has(rec.messageId) });
      if (!failed.has(rec.messageId)) await this.sqs.send(new DeleteMessageCommand({ QueueUrl: q.url, ReceiptHandle: rec.receiptHandle }));
    }
    return true;
  }

  /** Polls both queues until `done` says so; fails after `timeoutMs` or `maxInvocations`. */
  async until(done: () => Promise<boolean>, timeoutMs = 60_000, maxInvocations = 200): Promise<void> {
    const end = Date.now() + timeoutMs;
    let invocations = 0;
    while (Date.now() < end && invocations < maxInvocations) {
      if (await done()) return;
      const a = await this.pollOnce('execution');
      const b = await this.pollOnce('task');
      invocations += Number(a) + Number(b);
      if (!a && !b) await sleep(100);
    }
    if (await done()) return;
    throw new Error(`not done after ${invocations} invocations / ${timeoutMs} ms`);
  }
}

describe('AWS handlers end to end (dynalite, fauxqs, real registries)', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let sqs: FauxqsServer;
  let db: ReturnType<typeof dynalite>;
  let sqsClient: SQSClient;
  let sources: EventSources;
  let image: Layout;
  let big: Layout;
  let executionQueueUrl: string;
  let taskQueueUrl: string;
  let webhook: HttpHandler;
  let api: HttpHandler;
  let sweeper: (event: unknown, context: Context) => Promise<unknown>;
  const savedEnv = { ...process.env };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(src.host), startFaultProxy(dst.host)]);
    db = dynalite({ createTableMs: 0 });
    await new Promise<void>((ok) => db.listen(0, '127.0.0.1', () => ok()));
    const dbPort = (db.address() as AddressInfo).port;
    sqs = await startFauxqs({ port: 0, logger: false });
    const endpointSqs = `http://127.0.0.1:${sqs.port}`;
    sqsClient = new SQSClient({ endpoint: endpointSqs, useQueueUrlAsEndpoint: false, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const create = async (name: string, attributes: Record<string, string> = {}) => {
      const { QueueUrl } = await sqsClient.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      const url = QueueUrl!;
      const attrs = await sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
      return { url, arn: attrs.Attributes!.QueueArn! };
    };
    // As the stack makes them: each queue with a dead-letter queue after 5 receives.
    const queue = async (name: string) =>
      create(name, { VisibilityTimeout: '30', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: (await create(`${name}-dlq`)).arn, maxReceiveCount: 5 }) });
    const execution = await queue('executions');
    const task = await queue('tasks');
    executionQueueUrl = execution.url;
    taskQueueUrl = task.url;
    const endpointDb = `http://127.0.0.1:${dbPort}`;
    const client = new DynamoDBClient({ endpoint: endpointDb, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await ensureTable(client, TABLE);
    client.destroy();

    image = await imageLayout([{ size: 300_000 }, { size: 100_000 }], '1.0');
    big = await imageLayout([{ size: 3 * 1024 * 1024 }], '2.0');
    await Promise.all([pushLayout(image, `${src.host}/library/app:1.0`, { tag: '1.0' }), pushLayout(big, `${src.host}/big/app:2.0`, { tag: '2.0' })]);

    const config = {
      registries: [
        { name: 'hq', type: 'docker-registry', url: `http://${srcProxy.host}` },
        { name: 'branch', type: 'docker-registry', url: `http://${dstProxy.host}`, chunk_size: 256 * 1024 },
      ],
      rules: [
        {
          name: 'mirror-events',
          src_registry: 'hq',
          dest_registry: 'branch',
          filters: [{ type: 'name', value: 'library/**' }],
          trigger: { type: 'event_based' },
        },
        {
          name: 'nightly',
          src_registry: 'hq',
          dest_registry: 'branch',
          filters: [{ type: 'name', value: 'library/**' }],
          trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 2 * * *', timezone: 'Europe/Paris' } },
        },
        {
          name: 'big-blob',
          src_registry: 'hq',
          dest_registry: 'branch',
          filters: [{ type: 'name', value: 'big/**' }],
          trigger: { type: 'manual' },
          copy_by_chunk: true,
          speed: 8192, // Kbps (1 MiB/s): 3 MiB takes ~3 s, longer than one test invocation
        },
      ],
      webhook: { auth_header: { env: 'HR_TEST_WEBHOOK_AUTH' } },
    };
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_DYNAMODB: endpointDb,
      AWS_ENDPOINT_URL_SQS: endpointSqs,
      TABLE_NAME: TABLE,
      EXECUTION_QUEUE_URL: execution.url,
      TASK_QUEUE_URL: task.url,
      REPLICATOR_CONFIG: JSON.stringify(config),
      HR_TEST_WEBHOOK_AUTH: WEBHOOK_AUTH,
      POWERTOOLS_LOG_LEVEL: process.env.HR_TEST_LOG_LEVEL ?? 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    // Imported after the environment is set, as Lambda loads a bundle with its environment.
    const [w, a, p, c, sw] = await Promise.all([
      import('../functions/lambda/webhook.js'),
      import('../functions/lambda/api.js'),
      import('../functions/lambda/planner.js'),
      import('../functions/lambda/copier.js'),
      import('../functions/lambda/sweeper.js'),
    ]);
    sweeper = sw.handler as unknown as (event: unknown, context: Context) => Promise<unknown>;
    webhook = w.handler as unknown as HttpHandler;
    api = a.handler as unknown as HttpHandler;
    sources = new EventSources(sqsClient, { execution, task }, {
      planner: p.handler as SqsHandler,
      copier: c.handler as SqsHandler,
    });
  });

  after(async () => {
    sqsClient?.destroy();
    await sqs?.stop();
    await new Promise<void>((ok) => (db ? db.close(() => ok()) : ok()));
    await Promise.all([srcProxy?.stop(), dstProxy?.stop()]);
    await Promise.all([src?.stop(), dst?.stop()]);
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
  });

  const getJson = async <T>(path: string): Promise<T> => {
    const res = await api(httpEvent('GET', path, undefined), lambdaContext('api'));
    assert.equal(res.statusCode, 200, res.body);
    return JSON.parse(res.body) as T;
  };
  const finished = (id: string) => async () => (await getJson<Execution>(`/api/v1/executions/${id}`)).status !== 'InProgress';

  it('a Harbor push reaches the destination through receiver, planner and copier; a copier failure is redelivered and finishes', async () => {
    // The destination is unavailable for the first manifest PUT and its request-level retries
    // (5 attempts): the task fails its first run, transiently, and runs again.
    dstProxy.add({ method: 'PUT', path: /\/v2\/library\/app\/manifests\//, fault: { kind: 'status', status: 503, body: JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }), headers: { 'content-type': 'application/json' } }, times: 5 });

    const bad = await webhook(httpEvent('POST', '/webhooks/harbor', harborPayload('PUSH_ARTIFACT', srcProxy.host, 'library/app', image.top.digest, '1.0'), { authorization: 'Bearer wrong' }), lambdaContext('receiver'));
    assert.equal(bad.statusCode, 401, 'a wrong secret is refused');
    const res = await webhook(
      httpEvent('POST', '/webhooks/harbor', harborPayload('PUSH_ARTIFACT', srcProxy.host, 'library/app', image.top.digest, '1.0'), { authorization: WEBHOOK_AUTH }),
      lambdaContext('receiver'),
    );
    assert.equal(res.statusCode, 202, res.body);
    const { executions } = JSON.parse(res.body) as { executions: string[] };
    assert.equal(executions.length, 1, 'one event-based rule matches');
    const id = executions[0]!;

    await sources.until(finished(id), 60_000);
    const e = await getJson<Execution>(`/api/v1/executions/${id}`);
    assert.equal(e.status, 'Succeed', JSON.stringify(e));
    assert.equal(e.trigger, 'event_based');
    assert.equal(await manifestDigest(dst.url, 'library/app', '1.0'), image.top.digest, 'the image is at the destination, digest preserved');
    const tasks = await getJson<{ items: Task[] }>(`/api/v1/executions/${id}/tasks`);
    assert.equal(tasks.items.length, 1);
    assert.equal(tasks.items[0]!.status, 'Success');
    assert.equal(tasks.items[0]!.attempts, 2, 'the first run failed, the redelivery succeeded');
    const taskDeliveries = sources.deliveries.filter((d) => d.queue === 'task' && JSON.parse(d.body).executionId === id);
    assert.deepEqual(
      taskDeliveries.map((d) => [d.receiveCount, d.failed]),
      [
        [1, false],
        [1, false],
      ],
      'the failed run sent a fresh message for the retry (no stale receipt to lose it) and its record was done',
    );

    // Its log: one item per run, each written once by the run's last move (the retry, the success).
    const sequence = taskWrites(id, 1);
    assert.equal(sequence.filter((w) => w === 'log').length, 2, `two runs, two log writes: ${sequence.join(' ')}`);
    assert.equal(sequence.at(-1), 'log', 'the last run wrote its log after its last move');
    assert.ok(sequence.filter((w) => w === 'move').length >= 4, 'claim and end of each run: more moves than log writes');
    const log = await api(httpEvent('GET', `/api/v1/executions/${id}/tasks/1/log`, undefined), lambdaContext('api'));
    assert.equal(log.statusCode, 200, log.body);
    const lines = log.body.trimEnd().split('\n');
    assert.ok(lines.some((l) => / warn manifest retried after HTTP 503, waiting /.test(l)), log.body);
    assert.ok(lines.some((l) => / warn task run failed, retrying in /.test(l)), log.body);
    assert.equal(lines.filter((l) => / info task run started /.test(l)).length, 2);
    assert.match(lines.at(-1)!, / info task ended Success bytes=\d+/);
  });

  it('a blob longer than an invocation completes across invocations by handing over', async (t) => {
    sources.copierRemainingMs = 2000; // each copier invocation has 2 s; the blob needs ~3 s at the rule's speed
    const res = await api(httpEvent('POST', '/api/v1/executions', { rule: 'big-blob' }), lambdaContext('api'));
    assert.equal(res.statusCode, 201, res.body);
    const id = (JSON.parse(res.body) as Execution).id;
    try {
      await sources.until(finished(id), 90_000);
    } finally {
      sources.copierRemainingMs = 900_000;
    }
    const e = await getJson<Execution>(`/api/v1/executions/${id}`);
    assert.equal(e.status, 'Succeed', JSON.stringify(e));
    const layer = big.blobs.find((b) => b.size >= 3 * 1024 * 1024)!;
    assert.ok(await blobExists(dst.url, 'big/app', layer.digest), 'the registry accepted the blob: its digest check passed');
    assert.equal(await manifestDigest(dst.url, 'big/app', '2.0'), big.top.digest);

    const runs = sources.deliveries.filter((d) => d.queue === 'task' && JSON.parse(d.body).executionId === id);
    assert.ok(runs.length >= 2, `the copy took ${runs.length} invocation(s)`);
    t.diagnostic(`copier invocations for one 3 MiB layer at 1 MiB/s with 2 s each: ${runs.length}`);
    assert.ok(runs.slice(1).every((d) => JSON.parse(d.body).continuation === true), 'later invocations continue the task');
    const [task] = (await getJson<{ items: Task[] }>(`/api/v1/executions/${id}/tasks`)).items;
    assert.equal(task!.attempts, 1, 'continuations are not new attempts');
    // The next invocation continued the source where the upload stood: a Range GET past 0.
    const ranged = srcProxy.log.filter((l) => l.method === 'GET' && l.path.includes(layer.digest) && /^bytes=[1-9]/.test(String(l.headers.range ?? '')));
    assert.ok(ranged.length >= 1, 'the source was read from the checkpoint offset');
    t.diagnostic(`source Range GETs: ${ranged.map((l) => l.headers.range).join(', ')}`);
    // One upload session across the invocations: PATCHes continue one location, no new POST after the first.
    const posts = dstProxy.log.filter((l) => l.method === 'POST' && l.path.startsWith('/v2/big/app/blobs/uploads/'));
    assert.equal(posts.filter((l) => l.status === 202).length, 2, 'one session for the layer, one for the config');

    // The log: each invocation's run written once, when it handed over or ended; not on the moves
    // and heartbeats in between.
    const sequence = taskWrites(id, 1);
    const logWrites = sequence.filter((w) => w === 'log').length;
    t.diagnostic(`task item and log writes: ${sequence.join(' ')}`);
    assert.equal(logWrites, runs.length, `one log write per run (${runs.length})`);
    assert.ok(sequence.filter((w) => w === 'move').length >= 2 * runs.length, 'each run moved the task at least twice');
    assert.equal(sequence.at(-1), 'log');
    assert.ok(sequence.every((w, i) => w === 'move' || sequence[i - 1] === 'move'), 'a log write follows a move (the one that ended the run), never another log write');
    const log = await api(httpEvent('GET', `/api/v1/executions/${id}/tasks/1/log`, undefined), lambdaContext('api'));
    assert.equal(log.statusCode, 200, log.body);
    const lines = log.body.trimEnd().split('\n');
    assert.equal(lines.filter((l) => / info task handed over: /.test(l)).length, runs.length - 1, log.body);
    assert.equal(lines.filter((l) => / info task run continues a handed-over one /.test(l)).length, runs.length - 1);
    assert.ok(lines.some((l) => / info blob resumed at offset [1-9]\d* digest=/.test(l)), log.body);
    assert.match(lines.at(-1)!, / info task ended Success /);
  });

  it("EventBridge Scheduler's message on the execution queue starts a scheduled execution", async () => {
    // What the stack's schedule sends: the target's Input, verbatim, as the message body.
    await sqsClient.send(new SendMessageCommand({ QueueUrl: executionQueueUrl, MessageBody: JSON.stringify({ scheduledRule: 'nightly' }) }));
    let id: string | undefined;
    await sources.until(async () => {
      const [e] = (await getJson<{ items: Execution[] }>('/api/v1/executions?rule=nightly')).items;
      id = e?.id;
      return e !== undefined && e.status !== 'InProgress';
    }, 30_000);
    const e = await getJson<Execution>(`/api/v1/executions/${id}`);
    assert.equal(e.trigger, 'scheduled');
    assert.equal(e.status, 'Succeed', JSON.stringify(e));
    assert.equal(e.counts.total, 1, 'library/app:1.0, in sync since the first test');

    // A rule EventBridge Scheduler could not run is refused by the API before it is stored.
    const rule = { name: 'both-days', src_registry: 'hq', dest_registry: 'branch', trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 2 1 * 1' } } };
    const refused = await api(httpEvent('POST', '/api/v1/rules', rule), lambdaContext('api'));
    assert.equal(refused.statusCode, 400, refused.body);
    assert.match(refused.body, /both-days.*EventBridge/);
    const rules = await getJson<{ items: Array<{ name: string }> }>('/api/v1/rules');
    assert.ok(!rules.items.some((r) => r.name === 'both-days'), 'nothing stored');

    // A schedule firing for a rule deleted meanwhile is consumed once, not retried into the DLQ.
    await sqsClient.send(new SendMessageCommand({ QueueUrl: executionQueueUrl, MessageBody: JSON.stringify({ scheduledRule: 'deleted-rule' }) }));
    const gone = () => sources.deliveries.filter((d) => d.body.includes('deleted-rule'));
    await sources.until(async () => gone().length > 0, 10_000);
    assert.deepEqual(gone().map((d) => d.failed), [false]);
  });

  it("a reconcile schedule's message starts a reconcile execution; the API Lambda answers its drift from DynamoDB", async () => {
    // What the stack's `reconcile-<rule>` schedule sends.
    await sqsClient.send(new SendMessageCommand({ QueueUrl: executionQueueUrl, MessageBody: JSON.stringify({ scheduledRule: 'nightly', reconcile: true }) }));
    let id: string | undefined;
    await sources.until(async () => {
      const [e] = (await getJson<{ items: Execution[] }>('/api/v1/executions?rule=nightly&trigger=reconcile')).items;
      id = e?.id;
      return e !== undefined && e.status !== 'InProgress';
    }, 30_000);
    const e = await getJson<Execution>(`/api/v1/executions/${id}`);
    assert.equal(e.trigger, 'reconcile');
    assert.equal(e.status, 'Succeed', JSON.stringify(e));
    const drift = await getJson<{ execution: string; counts: Record<string, number>; extrasChecked: boolean; itemsLimit: number }>('/api/v1/rules/nightly/drift');
    assert.equal(drift.execution, id);
    assert.deepEqual(drift.counts, { missing: 0, different: 0, extra: 0, inSync: 1 }, 'library/app:1.0, in sync since the first test');
    assert.equal(drift.extrasChecked, false, 'nightly does not replicate deletions');
    assert.equal(drift.itemsLimit, 100);
  });

  it('the sweeper Lambda requeues tasks whose messages were lost, and the execution ends', async () => {
    // Something new for the nightly rule (library/**) to copy.
    await pushLayout(image, `${src.host}/library/swept:1`, { tag: '1.0' });
    const run = await api(httpEvent('POST', '/api/v1/executions', { rule: 'nightly' }), lambdaContext('api'));
    assert.equal(run.statusCode, 201, run.body);
    const { id } = JSON.parse(run.body) as Execution;
    // Only the planner runs (the copier does not poll yet).
    for (let i = 0; i < 100 && !(await getJson<Execution>(`/api/v1/executions/${id}`)).planned; i++) {
      if (!(await sources.pollOnce('execution'))) await sleep(100);
    }
    // The task messages are lost (a queue purged by mistake, a message past its retention).
    for (let i = 0; i < 20; i++) {
      const r = await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: taskQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!r.Messages?.length) break;
      for (const m of r.Messages) await sqsClient.send(new DeleteMessageCommand({ QueueUrl: taskQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }
    await sleep(200);
    assert.equal((await getJson<Execution>(`/api/v1/executions/${id}`)).status, 'InProgress', 'stranded: nothing will run its tasks');
    // The scheduled sweep (its clock: a message due this long ago and not claimed is lost; 0 here).
    Object.assign(process.env, { TASK_LOST_AFTER_MS: '0', PLAN_GRACE_MS: '0' });
    const report = (await sweeper({}, lambdaContext('sweeper'))) as { repairs: Record<string, number> };
    assert.ok((report.repairs.requeue ?? 0) >= 1, JSON.stringify(report));
    await sources.until(finished(id), 30_000);
    assert.equal((await getJson<Execution>(`/api/v1/executions/${id}`)).status, 'Succeed');
    assert.equal(await manifestDigest(dst.url, 'library/swept', '1'), image.top.digest);
  });
});
