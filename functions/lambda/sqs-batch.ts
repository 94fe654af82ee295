import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseMessage } from '../../shared/adapters/aws/sqs-queue.js';
import type { Queue, Received } from '../../shared/executions/ports.js';
import type { LambdaRuntime } from './runtime.js';

/** A record the handler asked to see again later: reported as a batch item failure. */
class RetryLater extends Error {
  override name = 'RetryLater';
}

/**
 * The queue as a function on an SQS event source sees it: `ack` is the event source's job
 * (a record that succeeds is deleted), `retry` sets the record's visibility (the delay) and
 * reports it failed so it stays in the queue; `send` goes to the real queue.
 */
export class EventSourceQueue<T> implements Queue<T> {
  private readonly retried = new Set<string>();

  constructor(
    private readonly queue: Queue<T>,
  ) {}

  send(messages: T[], delayMs?: number): Promise<void> {
    return this.queue.send(messages, delayMs);
  }

  async receive(): Promise<Array<Received<T>>> {
    throw new Error('a function on an SQS event source does not poll');
  }

  async ack(): Promise<void> {
    // The event source deletes a record reported successful.
  }

  extend(receipt: string, visibilityMs: number): Promise<void> {
    return this.queue.extend(receipt, visibilityMs);
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    await this.queue.retry(receipt, delayMs);
    this.retried.add(receipt);
  }

  /** Throws RetryLater when `retry` was called for this receipt (the record must not be deleted). */
  settle(receipt: string): void {
    if (this.retried.delete(receipt)) throw new RetryLater(`record will be delivered again`);
  }
}

/**
 * Runs `each` for every record of an SQS event with partial batch responses (Powertools Batch):
 * records that throw are reported failed and come back after their visibility timeout; the
 * others are deleted. Metrics are published at the end of the invocation.
 */
export async function processSqsEvent(
  rt: LambdaRuntime,
  event: SQSEvent,
  context: Context,
  each: (record: SQSRecord) => Promise<void>,
): Promise<SQSBatchResponse> {
  rt.log.addContext(context);
  const processor = new BatchProcessor(EventType.SQS);
  try {
    // A batch that fails whole is still a partial response: the retries' delays are already set.
    return await processPartialResponse(event, each, processor, { context, throwOnFullBatchFailure: false });
  } finally {
    if (rt.metrics.hasStoredMetrics()) rt.metrics.publishStoredMetrics();
  }
}

/** A record of a Lambda SQS event as a received message (for `processTask` and the planner). */
export function receivedFromSqsRecord<T>(record: Pick<SQSRecord, 'messageId' | 'receiptHandle' | 'body'> & { attributes: Pick<SQSRecord['attributes'], 'ApproximateReceiveCount'> }): Received<T> {
  return parseMessage<T>(record.messageId, record.receiptHandle, record.body, record.attributes?.ApproximateReceiveCount);
}
