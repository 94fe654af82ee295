import { describeError, ReplicatorError } from '../errors.js';
import { normalizeHost, type HarborArtifactEvent } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import type { DeliveryLog, Queue, TaskStore } from './ports.js';
import type { RuleConfig } from '../rules/config-schema.js';
import type { LoadedConfig } from '../rules/load-config.js';
import { RuleFilter } from '../rules/filters.js';
import { endpointOf } from '../rules/registry-endpoint.js';
import type { Execution, Trigger } from './model.js';

/** Harbor's reason for a single-active rule's run that did not start. */
export const ACTIVE_REASON = 'active replication still in progress';

import type { PlanJob } from './messages.js';

/** A plan job that could not be queued: the execution was failed at once (HTTP 503, a retry starts afresh). */
export class EnqueueFailedError extends ReplicatorError {
  override name = 'EnqueueFailedError';
  constructor(
    readonly execution: Execution,
    cause: unknown,
  ) {
    super('ENQUEUE_FAILED', `execution ${execution.id} of rule ${execution.rule} could not be queued: ${describeError(cause)}`, { cause });
  }
}

/** How long a webhook delivery key is remembered (Harbor retries within seconds). */
const DELIVERY_TTL_S = 24 * 3600;

/** What the routes start and stop executions through. */
export interface Frontdoor {
  runRule(ruleName: string, trigger: Trigger): Promise<Execution>;
  handleEvent(event: HarborArtifactEvent): Promise<{ executions: string[]; duplicate: boolean }>;
  stopExecution(id: string): Promise<Execution | undefined>;
}

/**
 * Creates executions (manual, scheduled, webhook) and hands them to the planners through a
 * queue: the local in-process queue in `serve`, the execution queue (SQS) on AWS. Answers at
 * once: planning and copying happen behind the queue.
 */
export class ExecutionFrontdoor implements Frontdoor {
  constructor(
    private readonly deps: {
      store: TaskStore;
      deliveries: DeliveryLog;
      config: () => LoadedConfig;
      /** Where plan jobs go (only sent to here). */
      planQueue: Pick<Queue<PlanJob>, 'send'>;
      log: Log;
      counters: Counters;
      /** Called for every execution created, with its rule (local bookkeeping). */
      onCreated?: (execution: Execution) => void;
    },
  ) {}

  async runRule(ruleName: string, trigger: Trigger): Promise<Execution> {
    const rule = this.deps.config().rule(ruleName);
    if (!rule.enabled) throw new ReplicatorError('RULE_DISABLED', `rule ${ruleName} is disabled (enabled: false)`);
    if (rule.single_active_replication && (await this.deps.store.activeExecutions(rule.name)).length > 0) {
      const skipped = await this.deps.store.createFinishedExecution({ rule: rule.name, trigger, status: 'Failed', statusText: ACTIVE_REASON });
      this.deps.log.info('execution skipped', { execution: skipped.id, rule: rule.name, trigger, reason: ACTIVE_REASON });
      this.deps.counters.executionFinished('Failed', skipped);
      return skipped;
    }
    const e = await this.deps.store.createExecution({ rule: rule.name, trigger });
    this.deps.onCreated?.(e);
    await this.enqueue(e, { executionId: e.id, rule: rule.name });
    this.deps.log.info('execution created', { execution: e.id, rule: rule.name, trigger });
    return e;
  }

  /**
   * Sends an execution's plan job. If it cannot be queued, the execution is failed at once
   * (`enqueue failed: CODE`) rather than left open with no planner to close it, and the caller
   * gets EnqueueFailedError (503): a retry makes a fresh execution.
   */
  private async enqueue(e: Execution, job: PlanJob): Promise<void> {
    try {
      await this.deps.planQueue.send([job]);
    } catch (err) {
      const code = err instanceof ReplicatorError ? err.code : ((err as { name?: string }).name ?? 'ERROR');
      const failed = await this.deps.store.finishPlanning(e.id, 0, { error: `enqueue failed: ${code}` });
      this.deps.log.error('plan job could not be queued', { execution: e.id, rule: e.rule, error: describeError(err) });
      throw new EnqueueFailedError(failed ?? e, err);
    }
  }

  /** Enabled event-based rules whose source is the event's Harbor and whose name filter keeps it. */
  matchingRules(event: HarborArtifactEvent): RuleConfig[] {
    const loaded = this.deps.config();
    return loaded.config.rules.filter((rule) => {
      if (!rule.enabled || rule.trigger.type !== 'event_based') return false;
      if (event.type === 'DELETE_ARTIFACT' && !rule.replicate_deletion) return false;
      const src = endpointOf(loaded.source(rule));
      const scheme = src.scheme === 'http' ? 'http' : 'https';
      if (normalizeHost(src.host, scheme) !== normalizeHost(event.host, scheme)) return false;
      return new RuleFilter(rule).repository(event.repository).keep;
    });
  }

  /**
   * One artifact of a delivery: an execution per matching rule. The delivery is claimed first
   * (Harbor retries what it thinks timed out) and recorded as done only once every plan job is
   * queued; if one cannot be, the claim is released so Harbor's retry starts afresh (503).
   */
  async handleEvent(event: HarborArtifactEvent): Promise<{ executions: string[]; duplicate: boolean }> {
    if (!(await this.deps.deliveries.claimDelivery(event.idempotencyKey, DELIVERY_TTL_S))) {
      return { executions: await this.deps.deliveries.deliveryExecutions(event.idempotencyKey), duplicate: true };
    }
    const ids: string[] = [];
    try {
      for (const rule of this.matchingRules(event)) {
        const e = await this.deps.store.createExecution({ rule: rule.name, trigger: 'event_based' });
        this.deps.onCreated?.(e);
        ids.push(e.id);
        await this.enqueue(e, { executionId: e.id, rule: rule.name, event: { type: event.type, repository: event.repository, digest: event.digest, tag: event.tag } });
        this.deps.log.info('execution created', { execution: e.id, rule: rule.name, trigger: 'event_based', event: event.type, repository: event.repository, digest: event.digest });
      }
    } catch (err) {
      await this.deps.deliveries.releaseDelivery(event.idempotencyKey).catch(() => {});
      throw err;
    }
    await this.deps.deliveries.recordDelivery(event.idempotencyKey, ids);
    return { executions: ids, duplicate: false };
  }

  /** Stops an execution: it always settles, from a recount of its tasks. */
  async stopExecution(id: string): Promise<Execution | undefined> {
    return this.deps.store.requestStop(id);
  }
}
