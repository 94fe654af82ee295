// The Queue over SQS keeps the in-process queue's contract, checked against a real SQS-protocol
// server (fauxqs, on 127.0.0.1): batched sends, receive counts, ack, retry as redelivery,
// delayed sends, stale receipts; and its exact requests and re-sends against a mocked client.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { SqsQueue } from '../shared/adapters/aws/sqs-queue.js';
import { receivedFromSqsRecord } from '../functions/lambda/sqs-batch.js';
import { ReplicatorError } from '../shared/errors.js';
import type { Received } from '../shared/executions/ports.js';

interface Msg {
  n: number;
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe('SqsQueue against fauxqs', () => {
  let server: FauxqsServer;
  let client: SQSClient;
  /** Every command the client sent, in order. */
  let sent: Array<{ name: string; input: Record<string, unknown> }>;
  let queueCount = 0;

  before(async () => {
    server = await startFauxqs({ port: 0, logger: false });
    client = new SQSClient({ endpoint: `http://127.0.0.1:${server.port}`, region: 'us-east-1', credentials });
    const send = client.send.bind(client) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
    (client as unknown as { send: typeof send }).send = (cmd, opts) => {
      const c = cmd as { constructor: { name: string }; input: Record<string, unknown> };
      sent.push({ name: c.constructor.name, input: c.input });
      return send(cmd, opts);
    };
  });
  after(async () => {
    client?.destroy();
    await server?.stop();
  });
  beforeEach(() => {
    sent = [];
  });

  /** A new queue per test (visibility 30 s, as SQS's default). */
  const newQueue = async (opts: { onInvalidMessage?: (e: ReplicatorError) => void } = {}) => {
    const name = `q${++queueCount}`;
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name }));
    sent = [];
    return { name, url: QueueUrl!, queue: new SqsQueue<Msg>({ client, queueUrl: QueueUrl!, ...opts }) };
  };

  /** Receives until `count` messages arrived, bounded in rounds and time. */
  const receiveAll = async (queue: SqsQueue<Msg>, count: number) => {
    const got: Array<Received<Msg>> = [];
    const deadline = Date.now() + 10_000;
    for (let round = 0; round < 20 && got.length < count && Date.now() < deadline; round++) {
      got.push(...(await queue.receive(25, 1000)));
    }
    return got;
  };

  it('sends 25 messages in batches of at most 10; all are received, in receives of at most 10', async () => {
    const { queue } = await newQueue();
    await queue.send(Array.from({ length: 25 }, (_, n) => ({ n })));
    const batches = sent.filter((c) => c.name === 'SendMessageBatchCommand').map((c) => (c.input.Entries as unknown[]).length);
    assert.deepEqual(batches.sort((a, b) => b - a), [10, 10, 5]);

    const got = await receiveAll(queue, 25);
    assert.deepEqual(got.map((m) => m.body.n).sort((a, b) => a - b), Array.from({ length: 25 }, (_, n) => n));
    assert.ok(got.every((m) => m.receiveCount === 1 && m.receipt !== ''));
    const receives = sent.filter((c) => c.name === 'ReceiveMessageCommand');
    assert.ok(receives.every((c) => c.input.MaxNumberOfMessages === 10), 'max 25 asked, 10 sent');
  });

  it('ack deletes the message: it is neither in flight nor delivered again', async () => {
    const { name, queue } = await newQueue();
    await queue.send([{ n: 1 }, { n: 2 }]);
    const got = await receiveAll(queue, 2);
    assert.equal(got.length, 2);
    await queue.ack(got[0]!.receipt);
    const left = server.inspectQueue(name)!.messages;
    assert.equal(left.inflight.length + left.ready.length + left.delayed.length, 1);
    assert.equal(left.inflight[0]?.message.body, JSON.stringify(got[1]!.body));
    assert.deepEqual(sent.find((c) => c.name === 'DeleteMessageCommand')?.input, { QueueUrl: sent[0]!.input.QueueUrl, ReceiptHandle: got[0]!.receipt });
  });

  it('retry with delay 0 delivers the message again at once, with receiveCount 2', async () => {
    const { queue } = await newQueue();
    await queue.send([{ n: 7 }]);
    const [first] = await queue.receive(1, 1000);
    assert.equal(first?.receiveCount, 1);
    assert.deepEqual(await queue.receive(1, 0), [], 'in flight: not delivered again before its visibility timeout');
    await queue.retry(first!.receipt, 0);
    const [again] = await queue.receive(1, 2000);
    assert.deepEqual(again?.body, { n: 7 });
    assert.equal(again?.receiveCount, 2);
    assert.notEqual(again?.receipt, first?.receipt);
  });

  it('a stale receipt (the message was delivered again, or deleted) is acked and retried as a no-op', async () => {
    const { name, queue } = await newQueue();
    await queue.send([{ n: 1 }]);
    const [first] = await queue.receive(1, 1000);
    await queue.retry(first!.receipt, 0);
    const [again] = await queue.receive(1, 2000);
    await queue.retry(first!.receipt, 0); // stale: must not make the new delivery visible
    await queue.ack(first!.receipt);
    assert.equal(server.inspectQueue(name)!.messages.inflight.length, 1, 'the redelivered message is still in flight');
    await queue.ack(again!.receipt);
    await queue.ack(again!.receipt); // twice: fine
    await queue.retry(again!.receipt, 0);
    const left = server.inspectQueue(name)!.messages;
    assert.equal(left.inflight.length + left.ready.length + left.delayed.length, 0);
  });

  it('a send with a delay is not visible at once, and is delivered after it', async () => {
    const { name, queue } = await newQueue();
    await queue.send([{ n: 1 }], 1500);
    assert.equal(sent[0]?.name, 'SendMessageBatchCommand');
    assert.deepEqual((sent[0]!.input.Entries as Array<Record<string, unknown>>)[0]?.DelaySeconds, 2, '1.5 s rounded up');
    assert.deepEqual(await queue.receive(10, 0), []);
    assert.equal(server.inspectQueue(name)!.messages.delayed.length, 1);
    const started = Date.now();
    const got = await receiveAll(queue, 1);
    assert.deepEqual(got.map((m) => m.body), [{ n: 1 }]);
    assert.ok(Date.now() - started >= 1000, `delivered after ${Date.now() - started} ms`);
  });

  it('an aborted long poll returns at once with nothing', async () => {
    const { queue } = await newQueue();
    const stop = new AbortController();
    const started = Date.now();
    setTimeout(() => stop.abort(), 100);
    assert.deepEqual(await queue.receive(10, 20_000, stop.signal), []);
    assert.ok(Date.now() - started < 5000, `returned after ${Date.now() - started} ms`);
    assert.deepEqual(await queue.receive(10, 20_000, stop.signal), [], 'already aborted: no request');
  });

  it('a body that is not JSON is reported and left for the dead-letter queue; the others are delivered', async () => {
    const invalid: ReplicatorError[] = [];
    const { name, url, queue } = await newQueue({ onInvalidMessage: (e) => invalid.push(e) });
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'password=hunter2' }));
    await queue.send([{ n: 1 }]);
    const got = await receiveAll(queue, 1);
    for (let i = 0; i < 5 && invalid.length === 0; i++) await queue.receive(10, 500);
    assert.deepEqual(got.map((m) => m.body), [{ n: 1 }]);
    assert.equal(invalid.length, 1);
    assert.equal(invalid[0]!.code, 'QUEUE_MESSAGE_INVALID');
    assert.doesNotMatch(invalid[0]!.message, /hunter2/);
    assert.equal(server.inspectQueue(name)!.messages.inflight.length, 2, 'the invalid one stays in flight, not deleted');
  });
});

describe('SqsQueue requests (mocked client)', () => {
  const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/tasks';
  const setup = () => {
    const client = new SQSClient({ region: 'eu-west-1', credentials });
    return { client, mock: mockClient(client) };
  };

  it('send: JSON bodies, DelaySeconds rounded up and capped at 900, Ids naming the message index', async () => {
    const { client, mock } = setup();
    mock.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const queue = new SqsQueue<Msg>({ client, queueUrl: url });
    await queue.send([{ n: 0 }, { n: 1 }], 10_000_000);
    await queue.send([{ n: 2 }]);
    await queue.send([]);
    const calls = mock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input);
    assert.deepEqual(calls, [
      {
        QueueUrl: url,
        Entries: [
          { Id: '0', MessageBody: '{"n":0}', DelaySeconds: 900 },
          { Id: '1', MessageBody: '{"n":1}', DelaySeconds: 900 },
        ],
      },
      { QueueUrl: url, Entries: [{ Id: '0', MessageBody: '{"n":2}' }] },
    ]);
  });

  it('send splits batches at 256 KiB of bodies', async () => {
    const { client, mock } = setup();
    mock.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const queue = new SqsQueue<string>({ client, queueUrl: url });
    await queue.send(['x'.repeat(100_000), 'y'.repeat(100_000), 'z'.repeat(100_000)]);
    assert.deepEqual(mock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.map((e) => e.Id)), [['0', '1'], ['2']]);
  });

  it('send re-sends entries SQS failed on its side, then succeeds', async () => {
    const { client, mock } = setup();
    mock
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Successful: [{ Id: '0', MessageId: 'a', MD5OfMessageBody: '' }], Failed: [{ Id: '1', SenderFault: false, Code: 'InternalError' }] })
      .resolves({ Successful: [], Failed: [] });
    const queue = new SqsQueue<Msg>({ client, queueUrl: url, resendDelayMs: 1 });
    await queue.send([{ n: 0 }, { n: 1 }]);
    const calls = mock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries);
    assert.deepEqual(calls, [
      [{ Id: '0', MessageBody: '{"n":0}' }, { Id: '1', MessageBody: '{"n":1}' }],
      [{ Id: '1', MessageBody: '{"n":1}' }],
    ]);
  });

  it('send throws naming the messages still failed after the bounded re-sends; a sender fault is not re-sent', async () => {
    const { client, mock } = setup();
    mock.on(SendMessageBatchCommand).callsFake((input: { Entries: Array<{ Id: string }> }) => ({
      Successful: [],
      Failed: input.Entries.map((e) => (e.Id === '11' ? { Id: e.Id, SenderFault: true, Code: 'InvalidMessageContents' } : { Id: e.Id, SenderFault: false, Code: 'ServiceUnavailable' })).filter((f) => f.Id === '11' || f.Id === '3'),
    }));
    const queue = new SqsQueue<Msg>({ client, queueUrl: url, sendAttempts: 3, resendDelayMs: 1 });
    await assert.rejects(queue.send(Array.from({ length: 12 }, (_, n) => ({ n }))), (err: ReplicatorError) => {
      assert.equal(err.code, 'QUEUE_SEND');
      assert.match(err.message, /^tasks: 2 of 12 messages not sent: message 3 \(ServiceUnavailable\); message 11 \(InvalidMessageContents\)$/);
      return true;
    });
    const calls = mock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.map((e) => e.Id));
    const first = calls.filter((ids) => ids.includes('3'));
    assert.deepEqual(first, [['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], ['3'], ['3']], 'message 3: sent 3 times, then given up');
    assert.deepEqual(calls.filter((ids) => ids.includes('11')), [['10', '11']], 'a sender fault is not re-sent');
  });

  it('receive, ack and retry send exactly these requests', async () => {
    const { client, mock } = setup();
    mock.on(ReceiveMessageCommand).resolves({
      Messages: [{ MessageId: 'm1', ReceiptHandle: 'r1', Body: '{"n":1}', Attributes: { ApproximateReceiveCount: '3' } }],
    });
    mock.on(DeleteMessageCommand).resolves({});
    mock.on(ChangeMessageVisibilityCommand).resolves({});
    const queue = new SqsQueue<Msg>({ client, queueUrl: url });
    assert.deepEqual(await queue.receive(50, 60_000), [{ body: { n: 1 }, receipt: 'r1', receiveCount: 3 }]);
    await queue.receive(3, 1);
    await queue.receive(1, 0);
    await queue.ack('r1');
    await queue.retry('r1', 1001);
    await queue.retry('r1', 100 * 3600_000);
    assert.deepEqual(mock.commandCalls(ReceiveMessageCommand).map((c) => c.args[0].input), [
      { QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] },
      { QueueUrl: url, MaxNumberOfMessages: 3, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] },
      { QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['ApproximateReceiveCount'] },
    ]);
    assert.deepEqual(mock.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input), [{ QueueUrl: url, ReceiptHandle: 'r1' }]);
    assert.deepEqual(mock.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input), [
      { QueueUrl: url, ReceiptHandle: 'r1', VisibilityTimeout: 2 },
      { QueueUrl: url, ReceiptHandle: 'r1', VisibilityTimeout: 43_200 },
    ]);
  });
});

describe('receivedFromSqsRecord', () => {
  const record = (body: string) => ({ messageId: 'mid-1', receiptHandle: 'rh-1', body, attributes: { ApproximateReceiveCount: '2' } });

  it('parses a Lambda SQS record into a received message', () => {
    assert.deepEqual(receivedFromSqsRecord<Msg>(record('{"n":4}')), { body: { n: 4 }, receipt: 'rh-1', receiveCount: 2 });
  });

  it('a body that is not JSON throws naming the message, without its body', () => {
    assert.throws(
      () => receivedFromSqsRecord(record('token=abc123')),
      (err: ReplicatorError) => err.code === 'QUEUE_MESSAGE_INVALID' && /mid-1/.test(err.message) && !err.message.includes('abc123'),
    );
  });
});
