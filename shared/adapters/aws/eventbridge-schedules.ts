import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  ResourceNotFoundException,
  UpdateScheduleCommand,
  type CreateScheduleInput,
  type GetScheduleOutput,
  type SchedulerClient,
} from '@aws-sdk/client-scheduler';
import pLimit from 'p-limit';
import { ReplicatorError } from '../../errors.js';
import type { ScheduleStore } from '../../rules/ports.js';
import type { RuleConfig } from '../../rules/config-schema.js';
import { CronTranslationError, managedSchedules, SCHEDULE_NAME, scheduleInput, toEventBridgeCron } from './eventbridge-cron.js';

export { RECONCILE_PREFIX, scheduleName, scheduleNameConflicts } from './eventbridge-cron.js';

/** Where the managed schedules live and what they send. */
export interface EventBridgeSchedulesOptions {
  client: SchedulerClient;
  /** The schedule group (the stack's, for API-managed rules). */
  group: string;
  /** The role EventBridge Scheduler assumes to send to the queue. */
  roleArn: string;
  /** The execution queue: each firing sends `{"scheduledRule": "<rule>"}` to it (with `"reconcile": true` for a reconcile). */
  queueArn: string;
  /** Marks the schedules this store manages in the group (default `api-`). */
  prefix?: string;
}

/** Pages of ListSchedules read at most (100 schedules each). */
const MAX_PAGES = 1000;
/** Scheduler calls at once during a sync. */
const CONCURRENCY = 4;
/**
 * A firing SQS cannot take at once (throttling, an outage) is retried for up to an hour; later
 * than that it is of no use, the next firing replicates the same state.
 */
const RETRY_POLICY = { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 20 };

/** What one schedule should be (the fields this store sets; the rest stay at their defaults). */
type ScheduleSpec = Omit<CreateScheduleInput, 'ClientToken'> & { Name: string };

/**
 * The ScheduleStore over EventBridge Scheduler: one schedule per enabled scheduled rule, named
 * `prefix` + rule name in `group`, and one per enabled rule with `reconcile:`, named `prefix` +
 * `reconcile-` + rule name, each firing a message to the execution queue. Only schedules with
 * the prefix in the group are managed (created, updated, deleted); others are never touched.
 *
 * An existing schedule is read (GetSchedule) and updated only when it differs from what it
 * should be: `updated` then lists real changes, an unchanged rule costs no write, and a schedule
 * edited by hand (or pointing at an old role after a redeploy) is put back. Every cron is
 * translated before any change, so a rule Scheduler cannot run fails the sync with nothing
 * changed. A sync that fails midway (throttling) leaves some changes made: run it again.
 */
export class EventBridgeSchedules implements ScheduleStore {
  private readonly prefix: string;

  constructor(private readonly opts: EventBridgeSchedulesOptions) {
    this.prefix = opts.prefix ?? 'api-';
    if (this.prefix.length > 32 || !SCHEDULE_NAME.test(this.prefix)) {
      throw new ReplicatorError('SCHEDULE_CONFIG', `schedule name prefix "${this.prefix}" must be 1-32 letters, digits, "-", "_" or "."`);
    }
  }

  async sync(rules: readonly RuleConfig[]): Promise<{ created: string[]; updated: string[]; deleted: string[] }> {
    const wanted = this.specs(rules);
    const existing = await this.list();
    const created: string[] = [];
    const updated: string[] = [];
    const deleted: string[] = [];
    const limit = pLimit(CONCURRENCY);
    await Promise.all([
      ...[...wanted.values()].map((spec) =>
        limit(async () => {
          const change = existing.has(spec.Name) ? await this.update(spec) : await this.create(spec);
          if (change === 'created') created.push(spec.Name);
          if (change === 'updated') updated.push(spec.Name);
        }),
      ),
      ...[...existing]
        .filter((name) => !wanted.has(name))
        .map((name) =>
          limit(async () => {
            if (await this.delete(name)) deleted.push(name);
          }),
        ),
    ]);
    return { created: created.sort(), updated: updated.sort(), deleted: deleted.sort() };
  }

  /** What the schedules should be, by name; throws before any change for a cron Scheduler cannot run. */
  private specs(rules: readonly RuleConfig[]): Map<string, ScheduleSpec> {
    const specs = new Map<string, ScheduleSpec>();
    const ruleOf = new Map<string, string>();
    for (const w of managedSchedules(rules, this.prefix)) {
      let expression: string;
      try {
        expression = toEventBridgeCron(w.cron);
      } catch (err) {
        if (!(err instanceof CronTranslationError)) throw err;
        throw new ReplicatorError('SCHEDULE_UNSUPPORTED', `${w.what}: cron "${w.cron}" cannot run on EventBridge Scheduler: ${err.message}`, { cause: err });
      }
      const other = ruleOf.get(w.name);
      if (other !== undefined) throw new ReplicatorError('SCHEDULE_CONFLICT', `${other} and ${w.what} would share the schedule ${w.name}`);
      ruleOf.set(w.name, w.what);
      specs.set(w.name, {
        Name: w.name,
        GroupName: this.opts.group,
        Description: `${w.reconcile ? 'Reconciles drift of' : 'Runs'} replication rule "${w.rule}" (managed by harbor-replicator: edits are overwritten)`,
        ScheduleExpression: expression,
        ScheduleExpressionTimezone: w.timezone ?? 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: this.opts.queueArn,
          RoleArn: this.opts.roleArn,
          Input: scheduleInput(w.rule, { reconcile: w.reconcile }),
          RetryPolicy: { ...RETRY_POLICY },
        },
        State: 'ENABLED',
      });
    }
    return specs;
  }

  /** Names of the managed schedules in the group. */
  private async list(): Promise<Set<string>> {
    const names = new Set<string>();
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const out = await this.call('ListSchedules', undefined, () =>
        this.opts.client.send(
          new ListSchedulesCommand({ GroupName: this.opts.group, NamePrefix: this.prefix, MaxResults: 100, ...(token ? { NextToken: token } : {}) }),
        ),
      );
      for (const s of out.Schedules ?? []) if (s.Name?.startsWith(this.prefix)) names.add(s.Name);
      token = out.NextToken;
      if (!token) return names;
    }
    throw new ReplicatorError('SCHEDULE_SYNC', `schedule group ${this.opts.group}: more than ${MAX_PAGES} pages of schedules`);
  }

  /** Creates a schedule; `fallback`: one created meanwhile (another sync) is updated instead. */
  private async create(spec: ScheduleSpec, fallback = true): Promise<'created' | 'updated' | 'unchanged'> {
    try {
      await this.opts.client.send(new CreateScheduleCommand(spec));
      return 'created';
    } catch (err) {
      if (fallback && err instanceof ConflictException) return this.update(spec, false);
      throw this.failure('CreateSchedule', spec.Name, err);
    }
  }

  /** Updates a schedule that differs; `fallback`: one deleted meanwhile is created again. */
  private async update(spec: ScheduleSpec, fallback = true): Promise<'created' | 'updated' | 'unchanged'> {
    let current: GetScheduleOutput;
    try {
      current = await this.opts.client.send(new GetScheduleCommand({ Name: spec.Name, GroupName: this.opts.group }));
    } catch (err) {
      if (fallback && err instanceof ResourceNotFoundException) return this.create(spec, false);
      throw this.failure('GetSchedule', spec.Name, err);
    }
    if (sameSchedule(current, spec)) return 'unchanged';
    await this.call('UpdateSchedule', spec.Name, () => this.opts.client.send(new UpdateScheduleCommand(spec)));
    return 'updated';
  }

  /** Deletes a schedule; false when it was gone already. */
  private async delete(name: string): Promise<boolean> {
    try {
      await this.opts.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.opts.group }));
      return true;
    } catch (err) {
      if (err instanceof ResourceNotFoundException) return false;
      throw this.failure('DeleteSchedule', name, err);
    }
  }

  private async call<T>(operation: string, name: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.failure(operation, name, err);
    }
  }

  private failure(operation: string, name: string | undefined, err: unknown): ReplicatorError {
    const e = err as Error;
    const what = name ? `schedule ${this.opts.group}/${name}` : `schedule group ${this.opts.group}`;
    return new ReplicatorError('SCHEDULE_SYNC', `${what}: ${operation} failed: ${e.name}: ${e.message}`, { cause: err });
  }
}

/** Whether a schedule as read is what `spec` says, in every field this store sets or leaves unset. */
function sameSchedule(current: GetScheduleOutput, spec: ScheduleSpec): boolean {
  const view = (s: GetScheduleOutput | ScheduleSpec) => ({
    expression: s.ScheduleExpression,
    timezone: s.ScheduleExpressionTimezone ?? 'UTC',
    state: s.State,
    description: s.Description ?? '',
    window: [s.FlexibleTimeWindow?.Mode, s.FlexibleTimeWindow?.MaximumWindowInMinutes],
    dates: [s.StartDate?.getTime(), s.EndDate?.getTime()],
    kms: s.KmsKeyArn,
    after: s.ActionAfterCompletion ?? 'NONE',
    target: [
      s.Target?.Arn,
      s.Target?.RoleArn,
      s.Target?.Input,
      s.Target?.RetryPolicy?.MaximumEventAgeInSeconds,
      s.Target?.RetryPolicy?.MaximumRetryAttempts,
      s.Target?.DeadLetterConfig?.Arn,
      s.Target?.SqsParameters?.MessageGroupId,
    ],
  });
  return JSON.stringify(view(current)) === JSON.stringify(view(spec));
}
