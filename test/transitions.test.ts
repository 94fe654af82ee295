// The task state machine as a table: every event from every status, the illegal ones included,
// with what each move writes, what it counts, and how a repeated move is recognised.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyCounts, TASK_STATUSES, type TaskStatus } from '../shared/executions/model.js';
import {
  alreadyApplied,
  applyMove,
  countDelta,
  LOST,
  planningRepair,
  settleDecision,
  taskMove,
  type TaskEvent,
  type TaskState,
  type TaskWrite,
} from '../shared/executions/transitions.js';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const error = { code: 'HTTP_500', message: 'boom' };

/** A task in `status`, owned by worker `w1` at revision 5 with a live lease (when Running). */
function task(status: TaskStatus, extra: Partial<TaskState & TaskWrite> = {}): TaskState & TaskWrite {
  return {
    status,
    revision: 5,
    attempts: 1,
    requeues: 0,
    ...(status === 'Running' ? { leaseToken: 'w1', leaseUntil: NOW + 60_000 } : { queuedAt: NOW - 1000 }),
    ...extra,
  };
}

const own = { token: 'w1', revision: 5, now: NOW };
const EVENTS: Record<string, TaskEvent> = {
  claim: { kind: 'claim', token: 'w2', now: NOW, leaseMs: 60_000, continuation: false },
  succeed: { kind: 'succeed', ...own, bytes: 10, text: '' },
  fail: { kind: 'fail', ...own, error, text: 'HTTP_500: boom' },
  retry: { kind: 'retry', ...own, delayMs: 2000, error, text: 'retrying' },
  handover: { kind: 'handover', ...own, checkpoint: [{ repository: 'r', digest: 'sha256:x', location: 'http://h/u', offset: 5 }], text: 'continuing' },
  handBack: { kind: 'handBack', ...own, text: 'handed back' },
  stopRunning: { kind: 'stopRunning', ...own },
  stopPending: { kind: 'stopPending', now: NOW },
  'succeed (lease lost)': { kind: 'succeed', ...own, token: 'w0', bytes: 10, text: '' },
  'succeed (stale revision)': { kind: 'succeed', ...own, revision: 4, bytes: 10, text: '' },
};

/** Status after each event from each status; '-' = the precondition fails (illegal or lost). */
const TABLE: Record<string, Record<TaskStatus, TaskStatus | '-'>> = {
  claim: { Pending: 'Running', Scheduled: 'Running', Running: '-', Stopped: '-', Error: '-', Success: '-' },
  succeed: { Pending: '-', Scheduled: '-', Running: 'Success', Stopped: '-', Error: '-', Success: '-' },
  fail: { Pending: '-', Scheduled: '-', Running: 'Error', Stopped: '-', Error: '-', Success: '-' },
  retry: { Pending: '-', Scheduled: '-', Running: 'Pending', Stopped: '-', Error: '-', Success: '-' },
  handover: { Pending: '-', Scheduled: '-', Running: 'Pending', Stopped: '-', Error: '-', Success: '-' },
  handBack: { Pending: '-', Scheduled: '-', Running: 'Pending', Stopped: '-', Error: '-', Success: '-' },
  stopRunning: { Pending: '-', Scheduled: '-', Running: 'Stopped', Stopped: '-', Error: '-', Success: '-' },
  stopPending: { Pending: 'Stopped', Scheduled: 'Stopped', Running: '-', Stopped: '-', Error: '-', Success: '-' },
  'succeed (lease lost)': { Pending: '-', Scheduled: '-', Running: '-', Stopped: '-', Error: '-', Success: '-' },
  'succeed (stale revision)': { Pending: '-', Scheduled: '-', Running: '-', Stopped: '-', Error: '-', Success: '-' },
};

describe('task state machine', () => {
  it('every event from every status: the table', () => {
    const got: Record<string, Record<string, string>> = {};
    for (const [name, event] of Object.entries(EVENTS)) {
      got[name] = {};
      for (const status of TASK_STATUSES) got[name][status] = applyMove(task(status), taskMove(event))?.status ?? '-';
    }
    assert.deepEqual(got, TABLE);
  });

  it('a move bumps the revision, records its id, and counts a claim as an attempt (not a continuation)', () => {
    const claim = taskMove(EVENTS.claim!);
    const running = applyMove(task('Pending'), claim)!;
    assert.equal(running.revision, 6);
    assert.equal(running.attempts, 2);
    assert.equal(running.leaseToken, 'w2');
    assert.equal(running.leaseUntil, NOW + 60_000);
    assert.equal(running.queuedAt, undefined);
    assert.equal(running.lastMove, claim.id);
    const continued = applyMove(task('Pending'), taskMove({ kind: 'claim', token: 'w3', now: NOW, leaseMs: 1000, continuation: true }))!;
    assert.equal(continued.attempts, 1, 'a continuation is not another attempt');
  });

  it('a repeated move is recognised and applies nothing the second time', () => {
    const move = taskMove(EVENTS.succeed!);
    const done = applyMove(task('Running'), move)!;
    assert.equal(done.status, 'Success');
    assert.equal(applyMove(done, move), undefined, 'its precondition no longer holds');
    assert.ok(alreadyApplied(done, move), 'and the task shows it was this very move');
    assert.ok(!alreadyApplied(done, taskMove(EVENTS.succeed!)), 'another move with the same content is not the same move');
  });

  it('a Running task whose lease expired is taken over by a new claim, with a new token; the old owner then fails cleanly', () => {
    const stale = task('Running', { leaseUntil: NOW - 1 });
    const taken = applyMove(stale, taskMove(EVENTS.claim!))!;
    assert.equal(taken.status, 'Running');
    assert.equal(taken.leaseToken, 'w2');
    assert.equal(countDelta(stale.status, taken.status).running, undefined, 'a takeover moves no counter');
    // The old owner (w1) finishing later: lease lost, nothing touched.
    assert.equal(applyMove(taken, taskMove({ ...EVENTS.succeed!, revision: taken.revision } as TaskEvent)), undefined);
  });

  it('what each worker move writes and clears', () => {
    const running = task('Running', { checkpoint: [{ repository: 'r', digest: 'd', location: 'l', offset: 1 }], error });
    const ok = applyMove(running, taskMove(EVENTS.succeed!))!;
    assert.deepEqual([ok.leaseToken, ok.leaseUntil, ok.checkpoint, ok.error, ok.bytes], [undefined, undefined, undefined, undefined, 10]);
    const retried = applyMove(running, taskMove(EVENTS.retry!))!;
    assert.equal(retried.queuedAt, NOW + 2000, 'due when the retry delay ends');
    assert.deepEqual(retried.error, error, 'the error stays while the retry waits');
    const handed = applyMove(running, taskMove(EVENTS.handover!))!;
    assert.equal(handed.checkpoint?.[0]?.offset, 5);
    const failed = applyMove(running, taskMove(EVENTS.fail!))!;
    assert.deepEqual(failed.error, error);
    assert.equal(failed.endTime, new Date(NOW).toISOString());
  });

  it('sweeper: an expired lease is requeued while attempts remain, then LOST; a stop makes it Stopped; a heartbeat since the read wins', () => {
    const expired = task('Running', { leaseUntil: NOW - 1, attempts: 1 });
    const again = applyMove(expired, taskMove({ kind: 'expire', task: expired, now: NOW, maxAttempts: 3, stopRequested: false }))!;
    assert.deepEqual([again.status, again.leaseToken, again.queuedAt], ['Pending', undefined, NOW]);
    const spent = task('Running', { leaseUntil: NOW - 1, attempts: 3 });
    const lost = applyMove(spent, taskMove({ kind: 'expire', task: spent, now: NOW, maxAttempts: 3, stopRequested: false }))!;
    assert.equal(lost.status, 'Error');
    assert.equal(lost.error?.code, LOST);
    const stopped = applyMove(expired, taskMove({ kind: 'expire', task: expired, now: NOW, maxAttempts: 3, stopRequested: true }))!;
    assert.equal(stopped.status, 'Stopped');
    // Its worker renewed the lease between the sweeper's read and its write: not applied.
    const renewed = { ...expired, leaseUntil: NOW + 30_000 };
    assert.equal(applyMove(renewed, taskMove({ kind: 'expire', task: expired, now: NOW, maxAttempts: 3, stopRequested: false })), undefined);
  });

  it('sweeper: a lost message is sent again (requeues + 1) until maxRequeues, then LOST; a claim since the read wins', () => {
    const pending = task('Pending', { queuedAt: NOW - 3_600_000 });
    const sent = applyMove(pending, taskMove({ kind: 'requeue', task: pending, now: NOW, maxRequeues: 3, stopRequested: false }))!;
    assert.deepEqual([sent.status, sent.requeues, sent.queuedAt], ['Pending', 1, NOW]);
    const tired = task('Pending', { requeues: 3 });
    const lost = applyMove(tired, taskMove({ kind: 'requeue', task: tired, now: NOW, maxRequeues: 3, stopRequested: false }))!;
    assert.deepEqual([lost.status, lost.error?.code], ['Error', LOST]);
    const claimed = applyMove(pending, taskMove(EVENTS.claim!))!;
    assert.equal(applyMove(claimed, taskMove({ kind: 'requeue', task: pending, now: NOW, maxRequeues: 3, stopRequested: false })), undefined);
  });

  it('counter deltas follow the statuses', () => {
    assert.deepEqual(countDelta('Pending', 'Running'), { pending: -1, running: 1 });
    assert.deepEqual(countDelta('Running', 'Error'), { running: -1, failed: 1 });
    assert.deepEqual(countDelta('Running', 'Running'), {});
  });
});

describe('execution decisions', () => {
  const counts = (c: Partial<ReturnType<typeof emptyCounts>>) => ({ ...emptyCounts(), ...c });
  const facts = { status: 'InProgress' as const, planned: true, stopRequested: false };

  it('settle: final only when planned and no task is open, with Harbor aggregation', () => {
    assert.deepEqual(settleDecision({ ...facts, planned: false }, counts({ total: 1, succeed: 1 })), { close: false });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 1, running: 1 })), { close: false });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 1, pending: 1 })), { close: false });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 2 })), { close: true, status: 'Succeed' });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 1, failed: 1 })), { close: true, status: 'Failed' });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 1, stopped: 1, failed: 1 })), { close: true, status: 'Failed' });
    assert.deepEqual(settleDecision(facts, counts({ total: 2, succeed: 1, stopped: 1 })), { close: true, status: 'Stopped' });
    assert.deepEqual(settleDecision(facts, counts({})), { close: true, status: 'Succeed' }, 'nothing to do is a success');
    assert.deepEqual(settleDecision({ ...facts, stopRequested: true }, counts({})), { close: true, status: 'Stopped' });
    assert.deepEqual(settleDecision({ ...facts, planError: 'PAGINATION_LOOP: x' }, counts({ total: 1, succeed: 1 })), { close: true, status: 'Failed', statusText: 'PAGINATION_LOOP: x' });
    assert.deepEqual(settleDecision({ ...facts, status: 'Succeed' }, counts({})), { close: false }, 'a final execution stays as it is');
  });

  it('planning repair: resumed when its lease ended, at most maxReplans times; abandoned when stopped', () => {
    const opts = { graceMs: 300_000, maxReplans: 3 };
    const open = { planned: false, stopRequested: false, replans: 0, createdAt: NOW - 1000 };
    assert.deepEqual(planningRepair({ ...open, planned: true }, NOW, opts), { kind: 'none' });
    assert.deepEqual(planningRepair(open, NOW, opts), { kind: 'none' }, 'its job may still be queued');
    assert.deepEqual(planningRepair({ ...open, createdAt: NOW - 600_000 }, NOW, opts), { kind: 'replan' }, 'never started');
    assert.deepEqual(planningRepair({ ...open, planLeaseUntil: NOW + 1 }, NOW, opts), { kind: 'none' }, 'a planner holds it');
    assert.deepEqual(planningRepair({ ...open, planLeaseUntil: NOW - 1 }, NOW, opts), { kind: 'replan' });
    assert.equal(planningRepair({ ...open, planLeaseUntil: NOW - 1, replans: 3 }, NOW, opts).kind, 'fail');
    assert.deepEqual(planningRepair({ ...open, planLeaseUntil: NOW - 1, stopRequested: true }, NOW, opts), { kind: 'abandon' });
  });
});
