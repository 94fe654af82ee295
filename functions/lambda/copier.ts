// The copier: one task per invocation (batch size 1) from the task queue. Copies the tag with
// all its children, streaming blobs; hands over before the invocation's deadline (chunked
// uploads are checkpointed into the task and a continuation message is queued), so a blob
// larger than one invocation can move completes across several.
import type { Context, SQSEvent } from 'aws-lambda';
import { BlobLocations } from '../../shared/copy/blob-locations.js';
import type { TaskMessage } from '../../shared/executions/messages.js';
import { processTask } from '../../shared/executions/worker.js';
import { recordWorkerEvent } from '../../shared/executions/worker-log.js';
import type { TaskStore } from '../../shared/executions/ports.js';
import { lambdaRuntime } from './runtime.js';
import { EventSourceQueue, processSqsEvent, receivedFromSqsRecord } from './sqs-batch.js';

/** Blob locations at destinations, kept while the container lives (mounts across tasks). */
const locations = new BlobLocations(10_000);

/** How often a running copy looks for a stop request. */
const STOP_POLL_MS = 5000;

/**
 * When to hand over and when to cut off, before the deadline: the handover margin leaves time
 * for the PATCH in flight to finish (a chunk at the rule's speed) and the task to be recorded.
 */
export function deadlineMargins(remainingMs: number): { handoverMs: number; cutoffMs: number } {
  return { handoverMs: Math.min(60_000, remainingMs * 0.25), cutoffMs: Math.min(10_000, remainingMs * 0.05) };
}

/** A signal aborted when the execution is asked to stop (read now, then every few seconds). */
async function watchStop(store: TaskStore, executionId: string): Promise<{ signal: AbortSignal; close(): void }> {
  const ctl = new AbortController();
  const check = async () => {
    if ((await store.getExecution(executionId).catch(() => undefined))?.stopRequested) ctl.abort();
  };
  await check();
  const timer = setInterval(() => void check(), STOP_POLL_MS);
  return { signal: ctl.signal, close: () => clearInterval(timer) };
}

export const handler = async (event: SQSEvent, context: Context) => {
  const rt = lambdaRuntime();
  await rt.freshConfig();
  const queue = new EventSourceQueue<TaskMessage>(rt.taskQueue);
  const remaining = context.getRemainingTimeInMillis();
  const deadline = Date.now() + remaining;
  const { handoverMs, cutoffMs } = deadlineMargins(remaining);
  return processSqsEvent(rt, event, context, async (record) => {
    const msg = receivedFromSqsRecord<TaskMessage>(record);
    const stop = await watchStop(rt.store, msg.body.executionId);
    try {
      await processTask(msg, {
        store: rt.store,
        taskQueue: queue,
        runtime: (r) => rt.ruleRuntime(r),
        locations,
        referrersLock: rt.referrersLock,
        stopSignal: () => stop.signal,
        handoverAt: deadline - handoverMs,
        cutoffAt: deadline - cutoffMs,
        onEvent: (e) => recordWorkerEvent(rt.log, rt.counters, e),
      });
    } finally {
      stop.close();
    }
    queue.settle(msg.receipt);
  });
};
