import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  MessageNotInflight,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicatorError } from '../../errors.js';
import type { Queue, Received } from '../../executions/ports.js';

/** SQS limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/). */
const MAX_BATCH_ENTRIES = 10;
/** A batch's bodies together; 256 KiB was SQS's limit until 2025 and still holds everywhere. */
const MAX_BATCH_BYTES = 256 * 1024;
const MAX_DELAY_SECONDS = 900;
const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_SECONDS = 43_200;
/** Batches in flight at once during one `send`. */
const SEND_CONCURRENCY = 4;

/** Where an SqsQueue sends and receives. */
export interface SqsQueueOptions {
  client: SQSClient;
  queueUrl: string;
  /** Sends of an entry SQS reports failed on its side before `send` gives up (default 3). */
  sendAttempts?: number;
  /** Pause before the first re-send, doubled each time (default 100 ms). */
  resendDelayMs?: number;
  /**
   * A received message whose body is not JSON: reported here and left in flight, so SQS's
   * redrive policy moves it to the dead-letter queue after its last receive.
   */
  onInvalidMessage?: (err: ReplicatorError) => void;
}

/**
 * The Queue over Amazon SQS, with the in-process MemoryQueue's semantics: JSON bodies,
 * at-least-once delivery, a receive count per delivery, retry as a visibility change, and a
 * stale receipt (the message was delivered again or deleted) acked or retried as a no-op.
 * Visibility timeout, dead letters and retention are the queue's settings (the stack's).
 */
export class SqsQueue<T> implements Queue<T> {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly name: string;

  constructor(private readonly opts: SqsQueueOptions) {
    this.client = opts.client;
    this.queueUrl = opts.queueUrl;
    this.name = opts.queueUrl.split('/').pop() || opts.queueUrl;
  }

  /**
   * Sends in batches of up to 10 (and 256 KiB); `delayMs` becomes DelaySeconds, rounded up and
   * capped at SQS's 15 minutes. Entries SQS fails on its side are sent again a few times; an
   * entry still failing, or failed as the sender's fault, makes `send` throw naming the
   * messages by their index in `messages`, after the other batches were sent: as with any
   * at-least-once queue, a caller sending again may deliver some messages twice.
   */
  async send(messages: T[], delayMs?: number): Promise<void> {
    const delay = delayMs === undefined ? undefined : Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delayMs / 1000)));
    const batches: SendMessageBatchRequestEntry[][] = [];
    let batch: SendMessageBatchRequestEntry[] = [];
    let bytes = 0;
    messages.forEach((m, i) => {
      const body = JSON.stringify(m) as string | undefined;
      if (body === undefined) throw new ReplicatorError('QUEUE_SEND', `${this.name}: message ${i} has no JSON form`);
      const size = Buffer.byteLength(body);
      if (batch.length === MAX_BATCH_ENTRIES || (batch.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      // The index as Id: unique within the batch, and it names the message in errors.
      batch.push({ Id: String(i), MessageBody: body, ...(delay === undefined ? {} : { DelaySeconds: delay }) });
      bytes += size;
    });
    if (batch.length > 0) batches.push(batch);
    const failures: string[] = [];
    for (let i = 0; i < batches.length; i += SEND_CONCURRENCY) {
      const results = await Promise.all(batches.slice(i, i + SEND_CONCURRENCY).map((b) => this.sendBatch(b)));
      for (const r of results) failures.push(...r);
    }
    if (failures.length > 0) {
      throw new ReplicatorError('QUEUE_SEND', `${this.name}: ${failures.length} of ${messages.length} messages not sent: ${failures.join('; ')}`);
    }
  }

  /** Sends one batch, re-sending what SQS failed on its side; returns what still failed. */
  private async sendBatch(entries: SendMessageBatchRequestEntry[]): Promise<string[]> {
    const attempts = Math.max(1, this.opts.sendAttempts ?? 3);
    let pending = entries;
    for (let attempt = 1; ; attempt++) {
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return [];
      // The sender's fault (a body SQS refuses) fails the same way every time.
      const retryable = failed.filter((f) => !f.SenderFault);
      if (retryable.length < failed.length || attempt >= attempts) {
        return failed.map((f) => `message ${f.Id} (${f.Code ?? 'error'}${f.Message ? `: ${f.Message}` : ''})`);
      }
      const ids = new Set(retryable.map((f) => f.Id));
      pending = pending.filter((e) => ids.has(e.Id));
      await sleep((this.opts.resendDelayMs ?? 100) * 2 ** (attempt - 1));
    }
  }

  /**
   * Up to `max` messages (at most 10: SQS's limit per receive), long-polling up to `waitMs`
   * (rounded up to seconds, at most 20). An abort through `signal` ends the wait with nothing
   * received (a message SQS handed out meanwhile is delivered again after its visibility timeout).
   */
  async receive(max: number, waitMs: number, signal?: AbortSignal): Promise<Array<Received<T>>> {
    if (max < 1 || signal?.aborted) return [];
    let out;
    try {
      out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.min(max, 10),
          WaitTimeSeconds: Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil(waitMs / 1000))),
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      if (signal?.aborted) return [];
      throw err;
    }
    const received: Array<Received<T>> = [];
    for (const m of out.Messages ?? []) {
      try {
        received.push(parseMessage<T>(m.MessageId ?? '?', m.ReceiptHandle ?? '', m.Body ?? '', m.Attributes?.ApproximateReceiveCount));
      } catch (err) {
        if (!(err instanceof ReplicatorError)) throw err;
        this.opts.onInvalidMessage?.(err);
      }
    }
    return received;
  }

  /** Deletes the message; a stale receipt is a no-op. */
  async ack(receipt: string): Promise<void> {
    try {
      await this.client.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
    } catch (err) {
      if (!isStaleReceipt(err)) throw err;
    }
  }

  /**
   * Delivers the message again after `delayMs` by changing its visibility timeout (seconds,
   * rounded up, capped at SQS's 12 hours); a stale receipt is a no-op.
   */
  async retry(receipt: string, delayMs: number): Promise<void> {
    await this.extend(receipt, delayMs);
  }

  async extend(receipt: string, visibilityMs: number): Promise<void> {
    const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(visibilityMs / 1000)));
    try {
      await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt, VisibilityTimeout: seconds }));
    } catch (err) {
      if (!isStaleReceipt(err)) throw err;
    }
  }
}

/**
 * An SQS message as a received one: the JSON body parsed, the receive count read. A body that is
 * not JSON throws a ReplicatorError (`QUEUE_MESSAGE_INVALID`) naming the message id (never its
 * content), so its handler can report that one message as failed.
 */
export function parseMessage<T>(messageId: string, receipt: string, body: string, receiveCount: string | undefined): Received<T> {
  let parsed: T;
  try {
    parsed = JSON.parse(body) as T;
  } catch {
    // Not the parser's message: it quotes the body.
    throw new ReplicatorError('QUEUE_MESSAGE_INVALID', `SQS message ${messageId}: the body (${Buffer.byteLength(body)} bytes) is not JSON`);
  }
  const count = Number(receiveCount);
  return { body: parsed, receipt, receiveCount: Number.isInteger(count) && count > 0 ? count : 1 };
}

/** The receipt no longer names an in-flight delivery: acked already, or delivered again. */
function isStaleReceipt(err: unknown): boolean {
  return err instanceof ReceiptHandleIsInvalid || err instanceof MessageNotInflight;
}
