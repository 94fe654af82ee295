// The in-process queue keeps SQS's contract: at-least-once delivery, visibility timeout and
// redelivery, delayed retries, dead letters after N receives, and backpressure for planners.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryQueue } from '../shared/adapters/local/memory-queue.js';

describe('MemoryQueue', () => {
  it('delivers a message not acked again after its visibility timeout', async () => {
    const q = new MemoryQueue<string>({ visibilityTimeoutMs: 50 });
    await q.send(['a']);
    const [first] = await q.receive(1, 0);
    assert.equal(first?.body, 'a');
    assert.deepEqual(await q.receive(1, 0), [], 'invisible while in flight');
    const [again] = await q.receive(1, 500);
    assert.equal(again?.body, 'a');
    assert.equal(again?.receiveCount, 2);
    await q.ack(first!.receipt); // a stale receipt does not delete the redelivered message
    assert.equal(q.size, 1);
    await q.ack(again!.receipt);
    assert.equal(q.size, 0);
  });

  it("extend keeps a message in flight past its visibility timeout (a running task's heartbeat): no second delivery meanwhile", async () => {
    const q = new MemoryQueue<string>({ visibilityTimeoutMs: 60 });
    await q.send(['a']);
    const [m] = await q.receive(1, 0);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 40));
      await q.extend(m!.receipt, 60);
    }
    assert.deepEqual(await q.receive(1, 0), [], '160 ms after delivery, beyond the 60 ms timeout, still in flight');
    const [again] = await q.receive(1, 500);
    assert.equal(again?.receiveCount, 2, 'once the heartbeats stop, it is delivered again');
  });

  it('retry delays the next delivery', async () => {
    const q = new MemoryQueue<string>();
    await q.send(['a']);
    const [m] = await q.receive(1, 0);
    await q.retry(m!.receipt, 80);
    const started = Date.now();
    const [again] = await q.receive(1, 1000);
    assert.equal(again?.body, 'a');
    assert.ok(Date.now() - started >= 70, `waited ${Date.now() - started} ms`);
  });

  it('moves a message to the dead letters after maxReceives deliveries', async () => {
    const dead: string[] = [];
    const q = new MemoryQueue<string>({ visibilityTimeoutMs: 10, maxReceives: 2, onDeadLetter: (b) => dead.push(b) });
    await q.send(['poison']);
    assert.equal((await q.receive(1, 0))[0]?.receiveCount, 1);
    assert.equal((await q.receive(1, 200))[0]?.receiveCount, 2);
    assert.deepEqual(await q.receive(1, 100), []);
    assert.deepEqual(dead, ['poison']);
    assert.equal(q.size, 0);
  });

  it('send waits while the queue is at its high-water mark', async () => {
    const q = new MemoryQueue<number>({ highWater: 2 });
    let sent = false;
    const sending = q.send([1, 2, 3]).then(() => (sent = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(sent, false, 'the third message waits for room');
    const [m] = await q.receive(1, 0);
    await q.ack(m!.receipt);
    await sending;
    assert.equal(q.size, 2);
  });

  it('receive waits for a message to arrive, up to waitMs', async () => {
    const q = new MemoryQueue<string>();
    setTimeout(() => void q.send(['late']), 30);
    const [m] = await q.receive(1, 1000);
    assert.equal(m?.body, 'late');
    const started = Date.now();
    assert.deepEqual(await q.receive(1, 50), []);
    assert.ok(Date.now() - started >= 45);
  });
});
