import { ReplicatorError } from '../errors.js';
import { normalizeHost, type HarborArtifactEvent } from '../harbor/webhook.js';
import type { Counters, Log } from '../observability/telemetry.js';
import type { DeliveryLog, Queue, TaskStore } from '../ports.js';
import type { RuleConfig } from '../rules/config-schema.js';
import type { LoadedConfig } from '../rules/load-config.js';
import { RuleFilter } from '../rules/filters.js';
import { endpointOf } from '../rules/registry-endpoint.js';
import type { Execution, Trigger } from './model.js';

/** Harbor's reason for a single-active rule's run that did not start. */
export const ACTIVE_REASON = 'active replication still in progress';

/** Work for a planner: a rule's full plan, or one artifact of a webhook event. */
export interface PlanJob {
  executionId: string;
  rule: string;
  event?: { type: HarborArtifactEvent['type']; repository: string; digest: string; tag: string | undefined } | undefined;
  /** Resuming a planning a crash interrupted. */
  resume?: boolean;
}

/**
 * A message on the execution queue: a plan job, or a scheduled rule's firing (EventBridge
 * Scheduler sends `{"scheduledRule": "<name>"}`; the planner creates the execution).
 */
export type ExecutionMessage = PlanJob | { scheduledRule: string };

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
      this.deps.counters.executionFinished('Failed');
      return skipped;
    }
    const e = await this.deps.store.createExecution({ rule: rule.name, trigger });
    this.deps.onCreated?.(e);
    await this.deps.planQueue.send([{ executionId: e.id, rule: rule.name }]);
    this.deps.log.info('execution created', { execution: e.id, rule: rule.name, trigger });
    return e;
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

  async handleEvent(event: HarborArtifactEvent): Promise<{ executions: string[]; duplicate: boolean }> {
    if (!(await this.deps.deliveries.claimDelivery(event.idempotencyKey, DELIVERY_TTL_S))) {
      return { executions: await this.deps.deliveries.deliveryExecutions(event.idempotencyKey), duplicate: true };
    }
    const ids: string[] = [];
    for (const rule of this.matchingRules(event)) {
      const e = await this.deps.store.createExecution({ rule: rule.name, trigger: 'event_based' });
      this.deps.onCreated?.(e);
      ids.push(e.id);
      await this.deps.planQueue.send([
        { executionId: e.id, rule: rule.name, event: { type: event.type, repository: event.repository, digest: event.digest, tag: event.tag } },
      ]);
      this.deps.log.info('execution created', { execution: e.id, rule: rule.name, trigger: 'event_based', event: event.type, repository: event.repository, digest: event.digest });
    }
    await this.deps.deliveries.recordDelivery(event.idempotencyKey, ids);
    return { executions: ids, duplicate: false };
  }

  async stopExecution(id: string): Promise<Execution | undefined> {
    const e = await this.deps.store.getExecution(id);
    if (!e) return undefined;
    await this.deps.store.requestStop(id);
    return (await this.deps.store.settleExecution(id)) ?? e;
  }
}
