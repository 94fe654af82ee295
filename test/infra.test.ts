// The AWS deployment (infra/): the config checks that stop a synth, the template's resources and
// the permissions that matter, cdk-nag's AWS Solutions checks, and one real `cdk synth` with the
// Lambda bundles. Assertion-only stacks skip bundling (`aws:cdk:bundling-stacks` = []), and each
// stack is synthesized once and shared by the tests reading it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App, CfnElement, Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENV } from '../functions/lambda/environment.js';
import { buildApp } from '../infra/build-app.js';
import { REPO_ROOT } from '../infra/bundling.js';
import { loadDeployment, locateConfig, scheduleNameOf, type Deployment } from '../infra/config.js';
import { acknowledgements } from '../infra/nag.js';
import { ENI_ACTIONS } from '../infra/network.js';
import { visibilityFor } from '../infra/queues.js';
import { HarborReplicatorStack } from '../infra/stack.js';
import { ConfigError } from '../shared/rules/load-config.js';

/** A config using every AWS feature: Harbor and registry sources, two ECR registries, schedules, a webhook. */
const FULL = `
registries:
  - {name: hq, type: harbor, url: "http://127.0.0.1:5000", credential: {username: "robot$replicator", password: {secret: hq-robot}}}
  - name: branch
    type: docker-registry
    url: "http://127.0.0.1:5001"
    credential: {username: mirror, password: {secret: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:branch-AbCdEf"}}
  - {name: ecr-src, type: aws-ecr, url: "https://111111111111.dkr.ecr.us-east-1.amazonaws.com"}
  - {name: ecr-dst, type: aws-ecr, url: "https://222222222222.dkr.ecr.eu-west-1.amazonaws.com", create_repositories: true}
rules:
  - {name: nightly, src_registry: hq, dest_registry: branch, trigger: {type: scheduled, trigger_settings: {cron: "0 0 2 * * 1-5", timezone: Europe/Paris}}}
  - {name: weekly, src_registry: hq, dest_registry: branch, trigger: {type: scheduled, trigger_settings: {cron: "30 4 * * 0"}}}
  - {name: paused, src_registry: hq, dest_registry: branch, enabled: false, trigger: {type: scheduled, trigger_settings: {cron: "0 3 * * *"}}}
  - {name: on-push, src_registry: hq, dest_registry: ecr-dst, replicate_deletion: true, trigger: {type: event_based}}
  - {name: from-ecr, src_registry: ecr-src, dest_registry: branch}
webhook: {auth_header: {secret: webhook-auth}}
api: {allowed_secrets: [team/shared-robot]}
aws:
  copier: {memory_mb: 2048, timeout_s: 600, reserved_concurrency: 20}
  planner: {timeout_s: 900}
  webhook_rate_limit: 25
  webhook_burst_limit: 40
`;

const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

let work: string;
async function configFile(name: string, text: string): Promise<string> {
  const file = join(work, name);
  await writeFile(file, text);
  return file;
}

/** A config's problems as the synth reports them (ConfigError lines), or [] when it deploys. */
async function awsProblems(text: string): Promise<string[]> {
  try {
    await loadDeployment(await configFile(`c-${Math.random().toString(36).slice(2)}.yaml`, text));
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
}

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

/** The policy statements attached to the role of `fn` (`Copier`, or `Schedules` for the scheduler's). */
function statementsOf(t: Template, stack: HarborReplicatorStack, fn: string): Statement[] {
  const role = lid(stack, `${fn}/Role/Resource`);
  const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p) =>
    (p.Properties.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: role })),
  );
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const allActions = (ss: Statement[]) => new Set(ss.flatMap(actionsOf));
/** Statements granting `action`, with their resources as JSON (logical IDs, ARNs). */
const grants = (ss: Statement[], action: string) => ss.filter((s) => actionsOf(s).includes(action)).map((s) => JSON.stringify(s.Resource));
/** The logical ID of the CloudFormation resource at `path` under the stack (`Copier/Role/Resource`). */
function lid(stack: HarborReplicatorStack, path: string): string {
  const c = stack.node.findAll().find((x) => x.node.path === `${stack.node.path}/${path}`);
  assert.ok(c instanceof CfnElement, `a resource at ${path}`);
  return stack.getLogicalId(c);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hr-infra-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('AWS deployment: the config a synth reads', () => {
  it('finds the file: -c config, then $REPLICATOR_CONFIG_FILE, then ./replicator.yaml, then the example', async () => {
    const cwd = join(work, 'cwd');
    await mkdir(cwd, { recursive: true });
    assert.deepEqual(locateConfig('a.yaml', { REPLICATOR_CONFIG_FILE: 'b.yaml' }, cwd, REPO_ROOT), { file: join(cwd, 'a.yaml'), example: false });
    assert.deepEqual(locateConfig(undefined, { REPLICATOR_CONFIG_FILE: 'b.yaml' }, cwd, REPO_ROOT), { file: join(cwd, 'b.yaml'), example: false });
    assert.deepEqual(locateConfig(undefined, {}, cwd, REPO_ROOT), { file: join(REPO_ROOT, 'examples/replicator.yaml'), example: true });
    await writeFile(join(cwd, 'replicator.yaml'), '');
    assert.deepEqual(locateConfig(undefined, {}, cwd, REPO_ROOT), { file: join(cwd, 'replicator.yaml'), example: false });
  });

  it('a bad field fails the synth with its path (the product\'s own validation)', async () => {
    const problems = await awsProblems(`
registries: [{name: hq, type: harbor, url: "http://h"}]
rules: [{name: r, src_registry: hq, dest_registry: hq, trigger: {type: weekly}}]
`);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^rules\[0\]\.trigger\.type: /);
  });

  it('refuses secrets that cannot work in Lambda, naming each path', async () => {
    const problems = await awsProblems(`
registries:
  - {name: hq, type: harbor, url: "http://h", credential: {username: u, password: {env: HQ_PASSWORD}}}
  - {name: b, type: docker-registry, url: "http://b", credential: {docker_config: true}, ca_file: /etc/ca.pem}
  - {name: c, type: docker-registry, url: "http://c", credential: {username: u, password: {file: /run/secret}}, ca: {file: /etc/ca.pem}}
  - {name: d, type: docker-registry, url: "https://d", ca: {secret: team/ca-bundle}}
webhook: {auth_header: {env: HOOK}}
`);
    assert.deepEqual(
      problems.map((p) => p.split(':', 1)[0]),
      ['registries[0].credential.password', 'registries[1].credential.docker_config', 'registries[1].ca_file', 'registries[2].credential.password', 'registries[2].ca.file', 'webhook.auth_header'],
    );
    assert.match(problems[2]!, /put the PEM bundle in Secrets Manager and use ca: \{secret: NAME_OR_ARN\}/);
    assert.match(problems[0]!, /must be \{secret: NAME_OR_ARN\} on AWS \(got \{env: HQ_PASSWORD\}/);
    assert.ok(problems.every((p) => !p.includes('undefined')));
  });

  it('an event-based rule needs the webhook secret', async () => {
    const problems = await awsProblems(`
registries: [{name: hq, type: harbor, url: "http://h"}]
rules: [{name: push, src_registry: hq, dest_registry: hq, trigger: {type: event_based}}]
`);
    assert.deepEqual(problems, [
      'webhook.auth_header: rule "push" (rules[0]) is event-based, so Harbor\'s webhook needs its secret: set webhook.auth_header to {secret: NAME_OR_ARN}',
    ]);
  });

  it('a cron EventBridge Scheduler cannot express fails with the rule\'s path and the reason', async () => {
    const problems = await awsProblems(`
registries: [{name: hq, type: harbor, url: "http://h"}]
rules:
  - {name: ok, src_registry: hq, dest_registry: hq, trigger: {type: scheduled, trigger_settings: {cron: "0 0 2 * * *"}}}
  - {name: both-days, src_registry: hq, dest_registry: hq, trigger: {type: scheduled, trigger_settings: {cron: "0 0 2 1 * 1"}}}
`);
    assert.deepEqual(problems, [
      'rules[1].trigger.trigger_settings.cron: EventBridge Scheduler cannot run "0 0 2 1 * 1": EventBridge cannot restrict both day-of-month and day-of-week (one of them must be "?")',
    ]);
  });

  it('an aws-ecr registry needs its registry URL (account and region are read from it)', async () => {
    const problems = await awsProblems(`registries: [{name: e, type: aws-ecr, url: "https://ecr.example.com"}]`);
    assert.match(problems[0]!, /^registries\[0\]\.url: an aws-ecr registry's URL must be https:\/\/<account>\.dkr\.ecr\.<region>\.amazonaws\.com/);
  });

  it('the example config deploys as is (it is what a synth without a config uses)', async () => {
    const d = await loadDeployment(join(REPO_ROOT, 'examples/replicator.yaml'));
    assert.deepEqual(d.registrySecrets, ['harbor-replicator/branch', 'harbor-replicator/hq-robot']);
    assert.equal(d.webhookSecret, 'harbor-replicator/webhook-auth');
  });

  it('schedule names: rule-<name>, within EventBridge\'s 64 characters, distinct for long names', () => {
    assert.equal(scheduleNameOf('mirror-library'), 'rule-mirror-library');
    const a = scheduleNameOf(`${'x'.repeat(100)}-a`);
    const b = scheduleNameOf(`${'x'.repeat(100)}-b`);
    assert.equal(a.length, 64);
    assert.notEqual(a, b);
    assert.match(a, /^rule-x+-[0-9a-f]{8}$/);
  });

  it('visibility timeout: six times the consumer\'s timeout, at most 12 hours', () => {
    assert.equal(visibilityFor(Duration.seconds(900)).toSeconds(), 5400);
    assert.equal(visibilityFor(Duration.hours(3)).toSeconds(), 12 * 3600);
  });

  it('the app exits non-zero with the config error and builds nothing', async () => {
    const bad = await configFile('bad-app.yaml', `registries: [{name: hq, type: harbor, url: "http://h", credential: {username: u, password: {env: P}}}]\n`);
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist/infra/app.js')], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, REPLICATOR_CONFIG_FILE: bad, CDK_OUTDIR: join(work, 'never') },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^harbor-replicator: invalid config .*bad-app\.yaml:\n {2}registries\[0\]\.credential\.password: must be \{secret: NAME_OR_ARN\} on AWS/);
    assert.equal(existsSync(join(work, 'never', 'HarborReplicator.template.json')), false);
  });
});

describe('AWS deployment: the stack', () => {
  let deployment: Deployment;
  let stack: HarborReplicatorStack;
  let t: Template;

  before(async () => {
    deployment = await loadDeployment(await configFile('full.yaml', FULL));
    const app = new App({ context: NO_BUNDLING });
    stack = new HarborReplicatorStack(app, 'HarborReplicator', { deployment });
    t = Template.fromStack(stack);
  });

  it('has exactly these resources', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(t.toJSON().Resources as Record<string, { Type: string }>)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    assert.deepEqual(counts, {
      'AWS::DynamoDB::Table': 1,
      'AWS::SQS::Queue': 4, // execution and task queues, a dead-letter queue each
      'AWS::SQS::QueuePolicy': 4, // TLS only
      'AWS::Scheduler::ScheduleGroup': 1,
      'AWS::Scheduler::Schedule': 2, // the two enabled scheduled rules
      'AWS::IAM::Role': 6, // five functions, the scheduler
      'AWS::IAM::Policy': 6,
      'AWS::Logs::LogGroup': 6, // five functions, API access logs
      'AWS::Lambda::Function': 5,
      'AWS::Lambda::EventSourceMapping': 2,
      'AWS::Lambda::Permission': 4, // one per route, and the sweeper's schedule
      'AWS::Events::Rule': 1, // the sweeper, every 5 minutes
      'AWS::ApiGatewayV2::Api': 1,
      'AWS::ApiGatewayV2::Integration': 2,
      'AWS::ApiGatewayV2::Route': 3,
      'AWS::ApiGatewayV2::Stage': 1,
      'AWS::CloudWatch::Alarm': 8, // the two dead-letter queues, failed executions, and one per config rule (5)
      'AWS::CloudWatch::Dashboard': 1,
    });
  });

  it('table: the key schema and indexes of ensureTable, on demand, PITR, TTL on `ttl`, encrypted, retained', () => {
    const gsi = (name: string, pk: string, sk: string) => ({
      IndexName: name,
      KeySchema: [
        { AttributeName: pk, KeyType: 'HASH' },
        { AttributeName: sk, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    });
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: ['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK', 'GSI3PK', 'GSI3SK', 'APK', 'ASK'].map((a) => ({ AttributeName: a, AttributeType: 'S' })),
        GlobalSecondaryIndexes: [gsi('GSI1', 'GSI1PK', 'GSI1SK'), gsi('GSI2', 'GSI2PK', 'GSI2SK'), gsi('GSI3', 'GSI3PK', 'GSI3SK'), gsi('GSI4', 'APK', 'ASK')],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
  });

  it('queues: encrypted, TLS only, redrive after 5 receives, visibility six times the consumer\'s timeout', () => {
    const execDlq = lid(stack, 'ExecutionQueue/DeadLetter/Resource');
    const taskDlq = lid(stack, 'TaskQueue/DeadLetter/Resource');
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: Match.absent(),
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * 900, // planner timeout_s 900
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [execDlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * 600, // copier timeout_s 600
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [taskDlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    assert.equal(Object.keys(t.findResources('AWS::SQS::Queue', { Properties: { SqsManagedSseEnabled: true } })).length, 4);
    const tlsOnly = t.findResources('AWS::SQS::QueuePolicy', {
      Properties: {
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      },
    });
    assert.equal(Object.keys(tlsOnly).length, 4);
  });

  it('functions: Node.js 22 on arm64, ESM bundle, X-Ray, sizes from the config, the contract\'s environment', () => {
    const fns = t.findResources('AWS::Lambda::Function');
    for (const f of Object.values(fns)) {
      assert.equal(f.Properties.Runtime, 'nodejs22.x');
      assert.deepEqual(f.Properties.Architectures, ['arm64']);
      assert.equal(f.Properties.Handler, 'index.handler');
      assert.deepEqual(f.Properties.TracingConfig, { Mode: 'Active' });
      const env = f.Properties.Environment.Variables;
      assert.equal(env.POWERTOOLS_SERVICE_NAME, 'harbor-replicator');
      assert.equal(env.POWERTOOLS_METRICS_NAMESPACE, 'HarborReplicator');
      assert.equal(env.NODE_OPTIONS, '--enable-source-maps');
      assert.deepEqual(env[ENV.table], { Ref: lid(stack, 'Store/Table/Resource') });
      assert.deepEqual(env[ENV.executionQueueUrl], { Ref: lid(stack, 'ExecutionQueue/Queue/Resource') });
      assert.deepEqual(env[ENV.taskQueueUrl], { Ref: lid(stack, 'TaskQueue/Queue/Resource') });
      assert.equal(env.REPLICATOR_CONFIG, undefined, 'the config is baked into the bundle, not the environment');
    }
    const fn = (prefix: string) => fns[lid(stack, `${prefix}/Function/Resource`)]!.Properties;
    assert.deepEqual([fn('Copier').MemorySize, fn('Copier').Timeout, fn('Copier').ReservedConcurrentExecutions], [2048, 600, 20]);
    assert.deepEqual([fn('Planner').MemorySize, fn('Planner').Timeout, fn('Planner').ReservedConcurrentExecutions], [512, 900, undefined]);
    assert.deepEqual([fn('Api').MemorySize, fn('Api').Timeout], [256, 29]);
    const apiEnv = fn('Api').Environment.Variables;
    assert.equal(apiEnv[ENV.scheduleGroup], t.findResources('AWS::Scheduler::ScheduleGroup')[lid(stack, 'Schedules/Group')]!.Properties.Name);
    assert.deepEqual(apiEnv[ENV.schedulerRoleArn], { 'Fn::GetAtt': [lid(stack, 'Schedules/Role/Resource'), 'Arn'] });
    assert.deepEqual(apiEnv[ENV.executionQueueArn], { 'Fn::GetAtt': [lid(stack, 'ExecutionQueue/Queue/Resource'), 'Arn'] });
    for (const other of ['Receiver', 'Planner', 'Copier', 'Sweeper']) assert.equal(fn(other).Environment.Variables[ENV.scheduleGroup], undefined);
    // The sweeper's clocks are the queues' visibility timeouts (six times their consumer's timeout).
    assert.equal(fn('Sweeper').Environment.Variables[ENV.taskLostAfterMs], String(6 * 600 * 1000));
    assert.equal(fn('Sweeper').Environment.Variables[ENV.planGraceMs], String(6 * 900 * 1000));
    const logGroups = Object.values(t.findResources('AWS::Logs::LogGroup'));
    assert.ok(logGroups.every((g) => g.Properties.RetentionInDays === 30));
  });

  it('event sources: planner in batches of 10, copier one message at a time within its reserved concurrency; partial batch failures', () => {
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: lid(stack, 'Planner/Function/Resource') },
      EventSourceArn: { 'Fn::GetAtt': [lid(stack, 'ExecutionQueue/Queue/Resource'), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: Match.absent(),
    });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: lid(stack, 'Copier/Function/Resource') },
      EventSourceArn: { 'Fn::GetAtt': [lid(stack, 'TaskQueue/Queue/Resource'), 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
  });

  it('HTTP API: the webhook without IAM and throttled, the management API behind IAM, access logs', () => {
    const routes = Object.values(t.findResources('AWS::ApiGatewayV2::Route')).map((r) => [r.Properties.RouteKey, r.Properties.AuthorizationType]);
    assert.deepEqual(routes.sort(), [
      ['ANY /api/v1', 'AWS_IAM'],
      ['ANY /api/v1/{proxy+}', 'AWS_IAM'],
      ['POST /webhooks/harbor', 'NONE'],
    ]);
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      RouteSettings: { 'POST /webhooks/harbor': { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 40 } },
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [lid(stack, 'Http/AccessLogs/Resource'), 'Arn'] }, Format: Match.stringLikeRegexp('\\$context\\.requestId') },
    });
    // Each route reaches its own function.
    const integrations = Object.values(t.findResources('AWS::ApiGatewayV2::Integration')).map((i) => JSON.stringify(i.Properties.IntegrationUri));
    assert.ok(integrations.some((u) => u.includes(lid(stack, 'Receiver/Function/Resource'))));
    assert.ok(integrations.some((u) => u.includes(lid(stack, 'Api/Function/Resource'))));
  });

  it('schedules: one per enabled scheduled rule, EventBridge cron in the rule\'s time zone, straight to the execution queue', () => {
    const queueArn = { 'Fn::GetAtt': [lid(stack, 'ExecutionQueue/Queue/Resource'), 'Arn'] };
    const roleArn = { 'Fn::GetAtt': [lid(stack, 'Schedules/Role/Resource'), 'Arn'] };
    const group = t.findResources('AWS::Scheduler::ScheduleGroup')[lid(stack, 'Schedules/Group')]!.Properties.Name;
    const schedule = (name: string, expression: string, timezone: string, rule: string) =>
      t.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: name,
        GroupName: group,
        ScheduleExpression: expression,
        ScheduleExpressionTimezone: timezone,
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: { Arn: queueArn, RoleArn: roleArn, Input: JSON.stringify({ scheduledRule: rule }) },
      });
    schedule('rule-nightly', 'cron(0 2 ? * 2-6 *)', 'Europe/Paris', 'nightly'); // Harbor's 6 fields, Mon-Fri
    schedule('rule-weekly', 'cron(30 4 ? * 1 *)', 'UTC', 'weekly'); // 5 fields, Sunday, no time zone
    assert.equal(Object.keys(t.findResources('AWS::Scheduler::Schedule', { Properties: { Name: 'rule-paused' } })).length, 0);
  });

  it('the scheduler role: assumed by EventBridge Scheduler of this account, may only send to the execution queue', () => {
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          },
        ],
      },
    });
    const statements = statementsOf(t, stack, 'Schedules');
    assert.deepEqual(statements, [{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [lid(stack, 'ExecutionQueue/Queue/Resource'), 'Arn'] } }]);
  });

  it('IAM: each function gets only what it uses', () => {
    const execQueue = lid(stack, 'ExecutionQueue/Queue/Resource');
    const taskQueue = lid(stack, 'TaskQueue/Queue/Resource');
    const receiver = statementsOf(t, stack, 'Receiver');
    const api = statementsOf(t, stack, 'Api');
    const planner = statementsOf(t, stack, 'Planner');
    const copier = statementsOf(t, stack, 'Copier');
    const sweeper = statementsOf(t, stack, 'Sweeper');

    // Secrets: the webhook secret to the receiver only; registry secrets to api, planner, copier.
    const secretsOf = (ss: Statement[]) => grants(ss, 'secretsmanager:GetSecretValue').join(' ');
    assert.match(secretsOf(receiver), /secret:webhook-auth-\?\?\?\?\?\?/);
    assert.doesNotMatch(secretsOf(receiver), /hq-robot|branch/);
    for (const ss of [api, planner, copier]) {
      assert.match(secretsOf(ss), /secret:hq-robot-\?\?\?\?\?\?/);
      assert.match(secretsOf(ss), /arn:aws:secretsmanager:eu-west-1:123456789012:secret:branch-AbCdEf"/); // a complete ARN, as given
      assert.doesNotMatch(secretsOf(ss), /webhook-auth/, 'only the receiver reads the webhook secret');
    }

    // Queues.
    const sends = (ss: Statement[]) => grants(ss, 'sqs:SendMessage').join(' ');
    const receives = (ss: Statement[]) => grants(ss, 'sqs:ReceiveMessage').join(' ');
    assert.ok(sends(receiver).includes(execQueue) && !sends(receiver).includes(taskQueue) && receives(receiver) === '');
    assert.ok(sends(api).includes(execQueue) && !sends(api).includes(taskQueue) && receives(api) === '');
    // The planner turns a schedule's firing into an execution whose plan job it enqueues for itself.
    assert.ok(receives(planner).includes(execQueue) && sends(planner).includes(taskQueue) && sends(planner).includes(execQueue));
    assert.ok(receives(copier).includes(taskQueue) && sends(copier).includes(taskQueue) && !sends(copier).includes(execQueue) && !receives(copier).includes(execQueue));
    // The sweeper requeues tasks and resumes plannings: it sends to both queues, receives from none, reads no secret.
    assert.ok(sends(sweeper).includes(taskQueue) && sends(sweeper).includes(execQueue) && receives(sweeper) === '');
    assert.equal(secretsOf(sweeper), '');

    // Scheduler: the API manages api-* schedules of the group and passes the scheduler role, nothing else.
    const group = t.findResources('AWS::Scheduler::ScheduleGroup')[lid(stack, 'Schedules/Group')]!.Properties.Name;
    for (const action of ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule']) {
      assert.deepEqual(grants(api, action), [
        JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':scheduler:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:schedule/${group}/api-*`]] }),
      ]);
    }
    assert.deepEqual(grants(api, 'scheduler:ListSchedules'), ['"*"']);
    assert.deepEqual(grants(api, 'iam:PassRole'), [JSON.stringify({ 'Fn::GetAtt': [lid(stack, 'Schedules/Role/Resource'), 'Arn'] })]);
    for (const ss of [receiver, planner, copier, sweeper]) {
      assert.ok(![...allActions(ss)].some((a) => a.startsWith('scheduler:') || a === 'iam:PassRole'));
    }

    // Every function reads and writes the table, and nothing else of DynamoDB.
    const table = lid(stack, 'Store/Table/Resource');
    for (const ss of [receiver, api, planner, copier, sweeper]) {
      assert.ok(grants(ss, 'dynamodb:PutItem').every((r) => r.includes(table)) && grants(ss, 'dynamodb:PutItem').length === 1);
    }
  });

  it('ECR: token for planner and copier; copier pulls from sources, pushes (and creates, deletes) at destinations; planner lists', () => {
    const receiver = statementsOf(t, stack, 'Receiver');
    const api = statementsOf(t, stack, 'Api');
    const planner = statementsOf(t, stack, 'Planner');
    const copier = statementsOf(t, stack, 'Copier');
    const src = '"arn:aws:ecr:us-east-1:111111111111:repository/*"';
    const dst = '"arn:aws:ecr:eu-west-1:222222222222:repository/*"';
    const on = (ss: Statement[], resource: string) => ss.filter((s) => JSON.stringify(s.Resource) === resource).flatMap(actionsOf).sort();

    for (const ss of [receiver, api]) assert.ok(![...allActions(ss)].some((a) => a.startsWith('ecr:')));
    for (const ss of [planner, copier]) assert.deepEqual(grants(ss, 'ecr:GetAuthorizationToken'), ['"*"']);
    assert.deepEqual(on(copier, src), ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
    assert.deepEqual(on(copier, dst), [
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchDeleteImage', // on-push replicates deletions
      'ecr:BatchGetImage',
      'ecr:CompleteLayerUpload',
      'ecr:CreateRepository', // create_repositories: true
      'ecr:DescribeRepositories',
      'ecr:GetDownloadUrlForLayer',
      'ecr:InitiateLayerUpload',
      'ecr:PutImage',
      'ecr:UploadLayerPart',
    ]);
    assert.deepEqual(on(planner, src), [
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:DescribeImages',
      'ecr:DescribeRepositories',
      'ecr:GetDownloadUrlForLayer',
      'ecr:ListImages',
    ]);
    assert.deepEqual(on(planner, dst), ['ecr:BatchGetImage'], 'the planner only HEADs destination tags');
  });

  it('alarms: a message in either dead-letter queue, a failed execution (any rule), a failed execution of each config rule; a dashboard of queues, functions, replication and the per-rule figures', () => {
    for (const dlq of ['ExecutionQueue', 'TaskQueue']) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [lid(stack, `${dlq}/DeadLetter/Resource`), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'HarborReplicator',
      MetricName: 'ExecutionsFailed',
      Dimensions: [{ Name: 'service', Value: 'harbor-replicator' }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    // One per rule of the config file (rules made through the API are covered by the one above).
    for (const rule of deployment.config.rules.map((r) => r.name)) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'HarborReplicator',
        MetricName: 'ExecutionsFailed',
        Dimensions: Match.arrayWith([{ Name: 'rule', Value: rule }, { Name: 'service', Value: 'harbor-replicator' }]),
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmDescription: Match.stringLikeRegexp(`rule "${rule}"`),
      });
    }
    const perRule = Object.values(t.findResources('AWS::CloudWatch::Alarm')).filter((a) => (a.Properties.Dimensions as Array<{ Name: string }>).some((d) => d.Name === 'rule'));
    assert.equal(perRule.length, deployment.config.rules.length);
    const body = JSON.stringify(Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody);
    for (const m of ['ExecutionsFailed', 'ExecutionDuration', 'DriftArtifacts']) assert.match(body, new RegExp(`SEARCH\\('\\{HarborReplicator,rule,service\\} MetricName=.{0,8}${m}`), `per-rule ${m}`);
    for (const m of ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage', 'Errors', 'Duration', 'Throttles', 'ExecutionsFailed', 'ExecutionsSucceeded', 'TasksFailed', 'TasksSucceeded', 'BytesCopied']) {
      assert.ok(body.includes(`\\"${m}\\"`), m);
    }
  });

  it('sweeper: an EventBridge rule every 5 minutes invokes it, no retries (the next sweep is the retry)', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [lid(stack, 'Sweeper/Function/Resource'), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
  });

  it('outputs: webhook and API URLs, table, queues, dashboard', () => {
    const outputs = t.toJSON().Outputs as Record<string, { Value: unknown }>;
    assert.deepEqual(Object.keys(outputs).sort(), ['ApiUrl', 'DashboardName', 'ExecutionQueueUrl', 'TableName', 'TaskQueueUrl', 'WebhookUrl']);
    const api = lid(stack, 'Http/Api/Resource');
    assert.deepEqual(outputs.WebhookUrl!.Value, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [api, 'ApiEndpoint'] }, '/webhooks/harbor']] });
    assert.deepEqual(outputs.ApiUrl!.Value, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [api, 'ApiEndpoint'] }, '/api/v1']] });
  });

  it('API-managed credentials: only the API may create, put and tag secrets, under the prefix; it, the planner and the copier read them; the prefix is in their environment', () => {
    const prefix = 'harbor-replicator/HarborReplicator/api/';
    const prefixArn = JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:secret:${prefix}*`]] });
    const roles = Object.fromEntries(['Receiver', 'Api', 'Planner', 'Copier'].map((r) => [r, statementsOf(t, stack, r)]));
    for (const action of ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:TagResource']) {
      assert.deepEqual(grants(roles.Api!, action), [prefixArn], action);
      for (const other of ['Receiver', 'Planner', 'Copier']) assert.deepEqual(grants(roles[other]!, action), [], `${other} ${action}`);
    }
    const write = roles.Api!.find((s) => actionsOf(s).includes('secretsmanager:CreateSecret'))!;
    assert.deepEqual(actionsOf(write).sort(), ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:TagResource'], 'nothing else on the prefix (no delete, no policy)');
    for (const r of ['Api', 'Planner', 'Copier']) {
      assert.ok(grants(roles[r]!, 'secretsmanager:GetSecretValue').includes(prefixArn), r);
      assert.match(grants(roles[r]!, 'secretsmanager:GetSecretValue').join(' '), /secret:team\/shared-robot-\?\?\?\?\?\?/, `${r} reads api.allowed_secrets`);
    }
    assert.ok(!grants(roles.Receiver!, 'secretsmanager:GetSecretValue').includes(prefixArn));
    assert.ok(!Object.values(roles).some((ss) => [...allActions(ss)].some((a) => a === 'secretsmanager:DeleteSecret' || a === 'secretsmanager:*')));
    const fns = t.findResources('AWS::Lambda::Function');
    const envOf = (fn: string) => fns[lid(stack, `${fn}/Function/Resource`)]!.Properties.Environment.Variables;
    for (const fn of ['Api', 'Planner', 'Copier']) assert.equal(envOf(fn)[ENV.apiSecretPrefix], prefix, fn);
    assert.equal(envOf('Receiver')[ENV.apiSecretPrefix], undefined);
  });

  it('api.secret_prefix names the prefix (grants and environment)', async () => {
    const custom = await loadDeployment(await configFile('prefix.yaml', `${FULL}\n`.replace('api: {allowed_secrets: [team/shared-robot]}', 'api: {secret_prefix: team/replicator/}')));
    const s = new HarborReplicatorStack(new App({ context: NO_BUNDLING }), 'HarborReplicator', { deployment: custom });
    const tt = Template.fromStack(s);
    assert.match(grants(statementsOf(tt, s, 'Api'), 'secretsmanager:CreateSecret').join(' '), /:secret:team\/replicator\/\*"/);
    const env = tt.findResources('AWS::Lambda::Function')[lid(s, 'Copier/Function/Resource')]!.Properties.Environment.Variables;
    assert.equal(env[ENV.apiSecretPrefix], 'team/replicator/');
    assert.deepEqual(new AwsSolutionsChecks().validateScope(s).violations, [], 'the acknowledgement follows the prefix');
  });

  it('the template holds secret names, never values, and no config file content', () => {
    const text = JSON.stringify(t.toJSON());
    assert.ok(!text.includes('robot$replicator'), 'the config is baked into the bundles, not the template');
    assert.ok(text.includes('secret:hq-robot-??????'));
  });

  it('cdk-nag AwsSolutions: no finding left; each acknowledged one with its reason', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    assert.deepEqual(
      report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(',')}`),
      [],
    );
    const acks = acknowledgements(stack);
    const ids = new Set(acks.map((a) => a.id.replace(/\[.*\]$/, (m) => (m.includes('ecr:') ? '[ecr]' : m.includes('scheduler:') ? '[scheduler]' : m))));
    assert.ok(ids.has('AwsSolutions-L1') && ids.has('AwsSolutions-APIG4') && ids.has('AwsSolutions-IAM5[Resource::*]') && ids.has('AwsSolutions-IAM5[ecr]'));
    assert.ok(acks.every((a) => a.reason.length >= 40), 'every acknowledgement says why');
  });
});

describe('AWS deployment: the app without a config (the example), no ECR', () => {
  let t: Template;
  let stack: HarborReplicatorStack;

  before(async () => {
    const cwd = join(work, 'empty');
    await mkdir(cwd, { recursive: true });
    const app = new App({ context: NO_BUNDLING });
    ({ stack } = await buildApp(app, { env: {}, cwd }));
    t = Template.fromStack(stack);
  });

  it('warns that the example config was used', () => {
    Annotations.fromStack(stack).hasWarning('/HarborReplicator', Match.stringLikeRegexp('synthesized from examples/replicator.yaml'));
  });

  it('grants no ECR permission when no aws-ecr registry is configured', () => {
    for (const role of ['Receiver', 'Api', 'Planner', 'Copier']) {
      assert.ok(![...allActions(statementsOf(t, stack, role))].some((a) => a.startsWith('ecr:')), role);
    }
    t.resourceCountIs('AWS::Scheduler::Schedule', 2); // rule-mirror-library, reconcile-follow-team
    assert.deepEqual(new AwsSolutionsChecks().validateScope(stack).violations, []);
  });
});

describe('AWS deployment: a private network (aws.vpc)', () => {
  const VPC = 'vpc-0a1b2c3d4e5f60718';
  const SUBNETS = ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788', 'subnet-12345678'];
  const GROUPS = ['sg-0a1b2c3d4e5f60718', 'sg-87654321'];
  const ROUTE_TABLES = ['rtb-0a1b2c3d4e5f60718', 'rtb-87654321'];
  const FUNCTIONS = ['Receiver', 'Api', 'Planner', 'Copier', 'Sweeper'];
  /** FULL (every other AWS feature) with `aws.vpc` added: its last section is `aws:`. */
  const withVpc = (vpc: string) => `${FULL}  vpc: ${vpc}\n`;
  const REQUIRED_ONLY = withVpc(`{vpc_id: ${VPC}, subnet_ids: [${SUBNETS}], security_group_ids: [${GROUPS}]}`);
  const ENDPOINTS = withVpc(
    `{vpc_id: ${VPC}, subnet_ids: [${SUBNETS}], security_group_ids: [${GROUPS}], availability_zones: [eu-west-1a, eu-west-1b, eu-west-1a], route_table_ids: [${ROUTE_TABLES}], endpoints: true}`,
  );
  /** The region's service name, as the template spells it for a stack without an env. */
  const serviceName = (service: string) => ({ 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${service}`]] });

  async function synthOf(name: string, text: string) {
    const deployment = await loadDeployment(await configFile(name, text));
    const stack = new HarborReplicatorStack(new App({ context: NO_BUNDLING }), 'HarborReplicator', { deployment });
    return { deployment, stack, t: Template.fromStack(stack) };
  }
  const resourcesOf = (t: Template, type: string) => Object.entries(t.findResources(type));
  const ec2Types = (t: Template) => [...new Set(Object.values(t.toJSON().Resources as Record<string, { Type: string }>).map((r) => r.Type).filter((ty) => ty.startsWith('AWS::EC2::')))].sort();

  let plain: { stack: HarborReplicatorStack; t: Template };
  let required: { stack: HarborReplicatorStack; t: Template };
  let endpoints: { stack: HarborReplicatorStack; t: Template };
  before(async () => {
    plain = await synthOf('vpc-none.yaml', FULL);
    required = await synthOf('vpc-required.yaml', REQUIRED_ONLY);
    endpoints = await synthOf('vpc-endpoints.yaml', ENDPOINTS);
  });

  it('config: each problem named by its path (ID formats, empty and repeated lists, zones, route tables with endpoints, unknown keys)', async () => {
    assert.deepEqual(
      await awsProblems(`aws: {vpc: {vpc_id: vpc-12, subnet_ids: [subnet-xyz, "${SUBNETS[0]}", "${SUBNETS[0]}"], security_group_ids: [], route_table_ids: [rtb-1], nat: true}}`),
      [
        'aws.vpc.vpc_id: must be a VPC ID (vpc- and 8 to 17 lowercase hex digits) (got "vpc-12")',
        'aws.vpc.subnet_ids[0]: must be a subnet ID (subnet- and 8 to 17 lowercase hex digits) (got "subnet-xyz")',
        `aws.vpc.subnet_ids[2]: "${SUBNETS[0]}" is listed twice`,
        'aws.vpc.security_group_ids: lists at least one security group ID',
        'aws.vpc.route_table_ids[0]: must be a route table ID (rtb- and 8 to 17 lowercase hex digits) (got "rtb-1")',
        'aws.vpc: unknown field "nat"',
      ],
    );
    assert.deepEqual(
      await awsProblems(`aws: {vpc: {vpc_id: ${VPC}, subnet_ids: [${SUBNETS[0]}], security_group_ids: [sg-0A1B2C3D], availability_zones: [use1-az1, eu-west-1b], endpoints: true}}`),
      [
        'aws.vpc.security_group_ids[0]: must be a security group ID (sg- and 8 to 17 lowercase hex digits) (got "sg-0A1B2C3D")',
        'aws.vpc.availability_zones[0]: must be an availability zone name (e.g. eu-west-1a) (got "use1-az1")',
        'aws.vpc.availability_zones: lists the zone of each subnet, in the order of subnet_ids: 1 expected, got 2',
        "aws.vpc.route_table_ids: is required with endpoints: true (the S3 and DynamoDB gateway endpoints are routes in the subnets' route tables)",
      ],
    );
    assert.deepEqual(await awsProblems(`aws: {vpc: {subnet_ids: [], security_group_ids: [${GROUPS}]}}`), [
      'aws.vpc.vpc_id: is required',
      'aws.vpc.subnet_ids: lists at least one subnet ID',
    ]);
    assert.deepEqual(await awsProblems(`aws: {vpc: {vpc_id: ${VPC}, subnet_ids: [${SUBNETS}], security_group_ids: [sg-11111111, sg-22222222, sg-33333333, sg-44444444, sg-55555555, sg-66666666]}}`), [
      "aws.vpc.security_group_ids: lists at most 5 security groups (Lambda's limit)",
    ]);
  });

  it('only vpc_id, subnet_ids and security_group_ids: every function runs in those subnets with those groups; nothing is created in the VPC', () => {
    const fns = resourcesOf(required.t, 'AWS::Lambda::Function');
    assert.equal(fns.length, 5);
    for (const [id, f] of fns) assert.deepEqual(f.Properties.VpcConfig, { SubnetIds: SUBNETS, SecurityGroupIds: GROUPS }, id);
    assert.deepEqual(ec2Types(required.t), [], 'no endpoint, no security group, no rule on the given groups');
    assert.ok(!JSON.stringify(required.t.toJSON()).includes('Fn::GetAZs'), 'the zones are not needed');
  });

  it('no synth warning from the imported VPC and subnets (each known one acknowledged with its reason)', () => {
    for (const { stack } of [required, endpoints]) {
      const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue());
      assert.deepEqual(warnings.map((w) => `${w.id}: ${String(w.entry.data)}`), []);
    }
  });

  it('synth never looks the account up: no missing context, even for a stack with an account and a region', async () => {
    const deployment = await loadDeployment(await configFile('vpc-env.yaml', ENDPOINTS.replace(/availability_zones: \[[^\]]*\], /, '')));
    for (const env of [undefined, { account: '123456789012', region: 'eu-west-1' }]) {
      const app = new App({ context: NO_BUNDLING });
      new HarborReplicatorStack(app, 'HarborReplicator', { deployment, env });
      assert.equal(app.synth().manifest.missing, undefined, JSON.stringify(env));
    }
  });

  it('IAM: each function may create and delete its network interfaces (the exact actions, no managed policy), and is created after that policy', () => {
    const { t, stack } = required;
    for (const fn of FUNCTIONS) {
      const ec2 = statementsOf(t, stack, fn).filter((s) => actionsOf(s).some((a) => a.startsWith('ec2:')));
      assert.deepEqual(ec2, [{ Effect: 'Allow', Action: ENI_ACTIONS, Resource: '*' }], fn);
      const dependsOn = t.toJSON().Resources[lid(stack, `${fn}/Function/Resource`)].DependsOn as string[];
      assert.ok(dependsOn.includes(lid(stack, `${fn}/Role/DefaultPolicy/Resource`)), `${fn}: Lambda checks the ENI permissions when it creates the function`);
    }
    assert.deepEqual(ENI_ACTIONS, [
      'ec2:AssignPrivateIpAddresses',
      'ec2:CreateNetworkInterface',
      'ec2:DeleteNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSubnets',
      'ec2:UnassignPrivateIpAddresses',
    ]);
    for (const [id, role] of resourcesOf(t, 'AWS::IAM::Role')) assert.equal(role.Properties.ManagedPolicyArns, undefined, id);
  });

  it('without aws.vpc: no VpcConfig, no ec2 action, no EC2 resource', () => {
    for (const [id, f] of resourcesOf(plain.t, 'AWS::Lambda::Function')) assert.equal(f.Properties.VpcConfig, undefined, id);
    for (const fn of FUNCTIONS) assert.ok(![...allActions(statementsOf(plain.t, plain.stack, fn))].some((a) => a.startsWith('ec2:')), fn);
    assert.deepEqual(ec2Types(plain.t), []);
  });

  it('endpoints: true: gateway endpoints for DynamoDB and S3 (ECR\'s layers) in the given route tables', () => {
    const gateways = resourcesOf(endpoints.t, 'AWS::EC2::VPCEndpoint').filter(([, r]) => r.Properties.VpcEndpointType === 'Gateway');
    assert.deepEqual(
      gateways.map(([, r]) => r.Properties).sort((a, b) => JSON.stringify(a.ServiceName).localeCompare(JSON.stringify(b.ServiceName))),
      ['dynamodb', 's3'].map((service) => ({ VpcEndpointType: 'Gateway', VpcId: VPC, ServiceName: serviceName(service), RouteTableIds: ROUTE_TABLES })),
    );
  });

  it('endpoints: true: an interface endpoint per AWS API, private DNS on, one subnet per zone, behind the endpoints\' own group', () => {
    const { t, stack } = endpoints;
    const group = { 'Fn::GetAtt': [lid(stack, 'Network/Endpoints/SecurityGroup/Resource'), 'GroupId'] };
    const interfaces = resourcesOf(t, 'AWS::EC2::VPCEndpoint').filter(([, r]) => r.Properties.VpcEndpointType === 'Interface');
    const services = ['sqs', 'secretsmanager', 'ecr.api', 'ecr.dkr', 'sts', 'scheduler', 'logs', 'monitoring', 'xray'];
    assert.equal(interfaces.length, services.length);
    for (const service of services) {
      const found = interfaces.filter(([, r]) => JSON.stringify(r.Properties.ServiceName) === JSON.stringify(serviceName(service)));
      assert.equal(found.length, 1, service);
      assert.deepEqual(found[0]![1].Properties, {
        VpcEndpointType: 'Interface',
        VpcId: VPC,
        ServiceName: serviceName(service),
        PrivateDnsEnabled: true,
        // subnet_ids[2] is in eu-west-1a like subnet_ids[0]: an endpoint takes one subnet per zone.
        SubnetIds: [SUBNETS[0], SUBNETS[1]],
        SecurityGroupIds: [group],
      });
    }
    // The functions still run in every subnet.
    for (const [id, f] of resourcesOf(t, 'AWS::Lambda::Function')) assert.deepEqual(f.Properties.VpcConfig, { SubnetIds: SUBNETS, SecurityGroupIds: GROUPS }, id);
  });

  it('endpoints: true: their group admits HTTPS from the functions\' groups only and sends nothing; the operator\'s groups get no rule', () => {
    const { t } = endpoints;
    const groups = resourcesOf(t, 'AWS::EC2::SecurityGroup');
    assert.equal(groups.length, 1, 'only the endpoints\' group is created');
    const props = groups[0]![1].Properties;
    assert.equal(props.VpcId, VPC);
    assert.deepEqual(
      props.SecurityGroupIngress,
      GROUPS.map((g) => ({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: g, Description: `HTTPS from the functions (${g})` })),
    );
    // CDK's placeholder for "no egress": an ICMP rule no packet matches.
    assert.deepEqual(props.SecurityGroupEgress, [{ CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic', FromPort: 252, IpProtocol: 'icmp', ToPort: 86 }]);
    assert.deepEqual(ec2Types(t), ['AWS::EC2::SecurityGroup', 'AWS::EC2::VPCEndpoint'], 'no SecurityGroupIngress/Egress on the given groups');
  });

  it('endpoints: true: every function is created after the endpoints (without a NAT they are its only way to AWS)', () => {
    const { t, stack } = endpoints;
    const endpointIds = resourcesOf(t, 'AWS::EC2::VPCEndpoint').map(([id]) => id);
    assert.equal(endpointIds.length, 11);
    for (const fn of FUNCTIONS) {
      const dependsOn = t.toJSON().Resources[lid(stack, `${fn}/Function/Resource`)].DependsOn as string[];
      for (const id of endpointIds) assert.ok(dependsOn.includes(id), `${fn} after ${id}`);
    }
  });

  it('endpoints without availability_zones: the endpoints take every subnet (the operator lists one per zone)', async () => {
    const { t } = await synthOf('vpc-endpoints-nozones.yaml', ENDPOINTS.replace(/availability_zones: \[[^\]]*\], /, ''));
    const interfaces = resourcesOf(t, 'AWS::EC2::VPCEndpoint').filter(([, r]) => r.Properties.VpcEndpointType === 'Interface');
    assert.equal(interfaces.length, 9);
    for (const [id, r] of interfaces) assert.deepEqual(r.Properties.SubnetIds, SUBNETS, id);
  });

  it('route_table_ids without endpoints: a warning at synth, and no route', async () => {
    const { deployment, t } = await synthOf('vpc-rtb.yaml', withVpc(`{vpc_id: ${VPC}, subnet_ids: [${SUBNETS}], security_group_ids: [${GROUPS}], route_table_ids: [${ROUTE_TABLES}]}`));
    assert.deepEqual(deployment.warnings, ["aws.vpc.route_table_ids is used only with endpoints: true (the gateway endpoints' routes); without it the stack adds no route"]);
    assert.deepEqual(ec2Types(t), []);
  });

  it('endpoints: warnings for what VPC endpoints cannot reach (ECR in several regions, registries on the internet)', async () => {
    const { deployment } = await synthOf('vpc-warn.yaml', ENDPOINTS.replace('registries:\n', 'registries:\n  - {name: hub, type: docker-hub}\n'));
    assert.deepEqual(deployment.warnings, [
      'aws.vpc.endpoints: VPC endpoints serve only the region deployed to, and the aws-ecr registries are in eu-west-1, us-east-1: the others need a NAT gateway',
      'registries[0]: docker-hub "hub" is on the internet: with aws.vpc.endpoints the functions reach it only if the subnets also route to a NAT gateway',
    ]);
    assert.deepEqual((await loadDeployment(await configFile('vpc-nowarn.yaml', REQUIRED_ONLY))).warnings, [], 'none without endpoints');
  });

  it('the example config\'s commented-out vpc block, uncommented, is valid and puts the functions in the VPC', async () => {
    const example = readFileSync(join(REPO_ROOT, 'examples/replicator.yaml'), 'utf8');
    const at = example.indexOf('  # vpc:');
    assert.ok(at > 0);
    const { t } = await synthOf('example-vpc.yaml', example.slice(0, at) + example.slice(at).replace(/^ {2}# /gm, '  '));
    for (const [id, f] of resourcesOf(t, 'AWS::Lambda::Function')) assert.ok(f.Properties.VpcConfig, id);
    assert.equal(resourcesOf(t, 'AWS::EC2::VPCEndpoint').length, 11);
  });

  it('cdk-nag AwsSolutions: clean in both setups; the "*" acknowledgement gives the network interfaces\' reason', () => {
    for (const { stack } of [required, endpoints]) {
      const report = new AwsSolutionsChecks().validateScope(stack);
      assert.deepEqual(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(',')}`), []);
      for (const fn of FUNCTIONS) {
        const ack = acknowledgements(stack).find((a) => a.path === `HarborReplicator/${fn}/Role` && a.id === 'AwsSolutions-IAM5[Resource::*]');
        assert.match(ack?.reason ?? '', /ec2 network interface actions for Lambda in a VPC/, fn);
      }
    }
    // Without a VPC the reason does not claim them.
    const ack = acknowledgements(plain.stack).find((a) => a.path === 'HarborReplicator/Copier/Role' && a.id === 'AwsSolutions-IAM5[Resource::*]');
    assert.doesNotMatch(ack!.reason, /network interface/);
  });
});

describe('AWS deployment: npx cdk synth', () => {
  it('synthesizes offline with the five bundles, cdk-nag passing and the config baked into the copier', async (ctx) => {
    const out = join(work, 'cdk.out');
    const config = await configFile('synth.yaml', FULL);
    // `--build ""`: dist/ is what the suite runs; rebuilding it here would race the other test files.
    const r = spawnSync('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', out, '-c', `config=${config}`, '--build', ''], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const template = JSON.parse(readFileSync(join(out, 'HarborReplicator.template.json'), 'utf8'));
    const report = JSON.parse(readFileSync(join(out, 'validation-report.json'), 'utf8'));
    assert.deepEqual(report.pluginReports.flatMap((p: { violations: unknown[] }) => p.violations), []);

    const assets: Record<string, string> = {};
    for (const [id, res] of Object.entries(template.Resources as Record<string, { Type: string; Metadata: Record<string, string> }>)) {
      if (res.Type !== 'AWS::Lambda::Function') continue;
      assets[id.replace(/Function[0-9A-F]{8}$/, '')] = join(out, res.Metadata['aws:asset:path']!);
    }
    assert.deepEqual(Object.keys(assets).sort(), ['Api', 'Copier', 'Planner', 'Receiver', 'Sweeper']);
    for (const dir of Object.values(assets)) {
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      assert.ok(code.startsWith("import { createRequire as __hrRequire } from 'node:module';"), 'ESM with the createRequire banner');
      assert.ok(existsSync(join(dir, 'index.mjs.map')));
      // The embedded store (a native addon) and the test emulator belong to the CLI only.
      assert.ok(!/better[-_]sqlite3|dynalite/.test(code), `${dir}: no embedded store in a Lambda bundle`);
    }
    const copier = readFileSync(join(assets.Copier!, 'index.mjs'), 'utf8');
    assert.ok(copier.includes('robot$replicator') && copier.includes('nightly'), 'the validated config is baked into the copier bundle');
    assert.ok(!copier.includes('process.env.REPLICATOR_CONFIG'), 'every reference was replaced');
    for (const [name, dir] of Object.entries(assets)) {
      ctx.diagnostic(`${name} bundle: ${(statSync(join(dir, 'index.mjs')).size / 1024 / 1024).toFixed(2)} MiB`);
    }
  });
});

describe('AWS deployment: drift reconcile schedules', () => {
  const RECONCILE = `
registries:
  - {name: hq, type: harbor, url: "http://127.0.0.1:5000"}
  - {name: branch, type: docker-registry, url: "http://127.0.0.1:5001"}
rules:
  - {name: nightly, src_registry: hq, dest_registry: branch, trigger: {type: scheduled, trigger_settings: {cron: "0 0 2 * * *"}}, reconcile: {cron: "0 30 3 * * *", timezone: Europe/Berlin}}
  - {name: on-push, src_registry: hq, dest_registry: branch, replicate_deletion: true, trigger: {type: event_based}, reconcile: {cron: "15 4 * * 0"}}
  - {name: paused, src_registry: hq, dest_registry: branch, enabled: false, reconcile: {cron: "0 5 * * *"}}
webhook: {auth_header: {secret: webhook-auth}}
`;
  let stack: HarborReplicatorStack;
  let t: Template;

  before(async () => {
    const deployment = await loadDeployment(await configFile('reconcile.yaml', RECONCILE));
    assert.deepEqual(
      deployment.schedules.map((s) => [s.scheduleName, s.rule, s.reconcile, s.expression, s.timezone]),
      [
        ['rule-nightly', 'nightly', false, 'cron(0 2 * * ? *)', 'UTC'],
        ['reconcile-nightly', 'nightly', true, 'cron(30 3 * * ? *)', 'Europe/Berlin'],
        ['reconcile-on-push', 'on-push', true, 'cron(15 4 ? * 1 *)', 'UTC'],
      ],
    );
    stack = new HarborReplicatorStack(new App({ context: NO_BUNDLING }), 'HarborReplicator', { deployment });
    t = Template.fromStack(stack);
  });

  it('reconcile-<rule>: one per enabled rule with reconcile:, its message asking the planner for a reconcile', () => {
    const queueArn = { 'Fn::GetAtt': [lid(stack, 'ExecutionQueue/Queue/Resource'), 'Arn'] };
    const roleArn = { 'Fn::GetAtt': [lid(stack, 'Schedules/Role/Resource'), 'Arn'] };
    const group = t.findResources('AWS::Scheduler::ScheduleGroup')[lid(stack, 'Schedules/Group')]!.Properties.Name;
    const schedules = Object.values(t.findResources('AWS::Scheduler::Schedule')).map((r) => r.Properties);
    assert.deepEqual(schedules.map((p) => p.Name).sort(), ['reconcile-nightly', 'reconcile-on-push', 'rule-nightly']);
    const reconcile = (name: string, expression: string, timezone: string, rule: string) =>
      t.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: name,
        GroupName: group,
        ScheduleExpression: expression,
        ScheduleExpressionTimezone: timezone,
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: { Arn: queueArn, RoleArn: roleArn, Input: JSON.stringify({ scheduledRule: rule, reconcile: true }) },
      });
    reconcile('reconcile-nightly', 'cron(30 3 * * ? *)', 'Europe/Berlin', 'nightly');
    reconcile('reconcile-on-push', 'cron(15 4 ? * 1 *)', 'UTC', 'on-push');
    // The rule's own schedule is unchanged: a scheduled run, no reconcile in its message.
    t.hasResourceProperties('AWS::Scheduler::Schedule', { Name: 'rule-nightly', Target: { Input: JSON.stringify({ scheduledRule: 'nightly' }) } });
  });

  it('a reconcile cron EventBridge Scheduler cannot express fails the synth with its path', async () => {
    const problems = await awsProblems(`
registries: [{name: hq, type: harbor, url: "http://h"}]
rules:
  - {name: ok, src_registry: hq, dest_registry: hq, reconcile: {cron: "0 0 2 * * *"}}
  - {name: both-days, src_registry: hq, dest_registry: hq, reconcile: {cron: "0 0 2 1 * 1"}}
`);
    assert.deepEqual(problems, [
      'rules[1].reconcile.cron: EventBridge Scheduler cannot run "0 0 2 1 * 1": EventBridge cannot restrict both day-of-month and day-of-week (one of them must be "?")',
    ]);
  });
});
