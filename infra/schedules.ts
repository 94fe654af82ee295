import { Aws, Names, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { CfnSchedule, CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { scheduleInput } from '../shared/adapters/aws/eventbridge-cron.js';
import type { ScheduledRule } from './config.js';
import { acknowledge } from './nag.js';

/** Name prefix of the schedules the API function manages (rules created through the API). */
export const API_SCHEDULE_PREFIX = 'api-';

export interface RuleSchedulesProps {
  /** The config file's enabled scheduled rules and drift reconciles. */
  schedules: readonly ScheduledRule[];
  /** Where a firing goes: the execution queue, as `{"scheduledRule": "<name>"}` (plus `"reconcile": true` for a reconcile). */
  executionQueue: IQueue;
}

/**
 * EventBridge Scheduler for scheduled rules and drift reconciles: one group, one schedule per
 * config-file scheduled rule (`rule-<name>`) sending `{"scheduledRule": "<rule>"}`, one per
 * config-file rule with `reconcile:` (`reconcile-<name>`) sending `{"scheduledRule": "<rule>",
 * "reconcile": true}`, straight to the execution queue (no function in between) through a role
 * that may only send to that queue. The API function manages `api-*` schedules (`api-<rule>`,
 * `api-reconcile-<rule>`) in the same group for the rules created through it.
 */
export class RuleSchedules extends Construct {
  readonly group: CfnScheduleGroup;
  readonly groupName: string;
  /** The role EventBridge Scheduler assumes to deliver to the execution queue. */
  readonly role: Role;

  constructor(scope: Construct, id: string, props: RuleSchedulesProps) {
    super(scope, id);
    this.groupName = Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    this.group = new CfnScheduleGroup(this, 'Group', { name: this.groupName });
    this.role = new Role(this, 'Role', {
      description: 'EventBridge Scheduler: sends scheduled rules to the harbor-replicator execution queue',
      // Confused-deputy guard: only schedules of this account may use the role.
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
    });
    this.role.addToPolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.executionQueue.queueArn] }));

    for (const s of props.schedules) {
      const schedule = new CfnSchedule(this, s.scheduleName, {
        name: s.scheduleName,
        groupName: this.groupName,
        description: s.reconcile ? `harbor-replicator: drift reconcile of rule ${s.rule}` : `harbor-replicator: rule ${s.rule}`,
        scheduleExpression: s.expression,
        scheduleExpressionTimezone: s.timezone,
        flexibleTimeWindow: { mode: 'OFF' },
        state: 'ENABLED',
        target: {
          arn: props.executionQueue.queueArn,
          roleArn: this.role.roleArn,
          input: scheduleInput(s.rule, { reconcile: s.reconcile }),
        },
      });
      schedule.node.addDependency(this.group);
    }
  }

  /**
   * Lets the API function manage its `api-*` schedules in this group and hand them this role
   * (and no other); ListSchedules has no resource-level permissions.
   */
  grantManageApiSchedules(grantee: IGrantable): void {
    const { partition, region, account } = Stack.of(this);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule'],
        resources: [`arn:${partition}:scheduler:${region}:${account}:schedule/${this.groupName}/${API_SCHEDULE_PREFIX}*`],
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: ['scheduler:ListSchedules'], resources: ['*'] }));
    this.role.grantPassRole(grantee.grantPrincipal);
  }

  /** Acknowledges, on the grantee's role, the wildcard grantManageApiSchedules needs. */
  acknowledgeApiSchedulesGrant(role: Construct): void {
    acknowledge(role, {
      [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.groupName}/${API_SCHEDULE_PREFIX}*]`]:
        `The API creates one schedule per API-managed scheduled rule, named ${API_SCHEDULE_PREFIX}<rule>: the wildcard is that prefix in this group only`,
    });
  }
}
