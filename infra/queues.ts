import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** SQS keeps a message at most 12 hours in flight. */
const MAX_VISIBILITY = Duration.hours(12);
/** Receives before a message goes to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;

/**
 * Visibility timeout for a queue consumed by a function with `timeout`: six times the timeout
 * (AWS's guidance for Lambda event sources: room for retries of a throttled or failed batch),
 * capped at SQS's 12 hours.
 */
export function visibilityFor(timeout: Duration): Duration {
  return Duration.seconds(Math.min(timeout.toSeconds() * 6, MAX_VISIBILITY.toSeconds()));
}

/** A work queue and its dead-letter queue, both encrypted (SQS-managed keys) and TLS-only. */
export class WorkQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: { consumerTimeout: Duration }) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetter', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: visibilityFor(props.consumerTimeout),
      // A message dropped by retention is a task left Pending for ever, so a week of backlog (a
      // copier capped by reserved concurrency can fall behind). Not 14 days: a message keeps its
      // first enqueue time in the dead-letter queue, which must outlive it to leave time to redrive.
      retentionPeriod: Duration.days(7),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
  }
}
