// The AWS adapters without an emulator: their exact requests and caching against mocked SDK
// clients (Secrets Manager, EventBridge Scheduler, ECR), and the ECR wiring end to end where it
// crosses the wire: ECR tokens as registry credentials against a real Basic-auth registry, and
// an aws-ecr destination copied with one streamed PUT whatever copy_by_chunk says.
import assert from 'node:assert/strict';
import { newMemoryQueue } from '../shared/adapters/local/memory-queue.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  RepositoryAlreadyExistsException,
  RepositoryNotFoundException,
} from '@aws-sdk/client-ecr';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  type GetScheduleOutput,
} from '@aws-sdk/client-scheduler';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException as SecretNotFound,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { parseEcrHost, EcrRegistries } from '../shared/adapters/aws/ecr-registry.js';
import { openEmbeddedStore, type EmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import { EventBridgeSchedules, scheduleName } from '../shared/adapters/aws/eventbridge-schedules.js';
import { SecretsManagerStore } from '../shared/adapters/aws/secrets-manager-store.js';
import { copyImage } from '../shared/copy/image-copy.js';
import { ReplicatorError } from '../shared/errors.js';
import { runExecution } from '../shared/executions/local-runner.js';
import type { RetryPolicy } from '../shared/registry/backoff.js';
import { HostStates } from '../shared/registry/backoff.js';
import { RegistryClient } from '../shared/registry/client.js';
import { parseReference } from '../shared/registry/reference.js';
import { ruleSchema, type RuleConfig } from '../shared/rules/config-schema.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import { resolveSecret } from '../shared/rules/secrets.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startTokenIssuer, type TokenIssuer } from './support/token-issuer.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const FAST: RetryPolicy = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 1000 };
const ECR_HOST = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const meta = { $metadata: {} };

/** A clock the test moves. */
const clock = (start = 1_700_000_000_000) => {
  const c = { t: start, now: () => c.t };
  return c;
};

describe('SecretsManagerStore', () => {
  const setup = (ttlMs?: number) => {
    const client = new SecretsManagerClient({ region: 'eu-west-1', credentials });
    const mock = mockClient(client);
    const c = clock();
    return { mock, c, store: new SecretsManagerStore({ client, now: c.now, ...(ttlMs ? { ttlMs } : {}) }) };
  };

  it('reads SecretString with exactly GetSecretValue {SecretId}', async () => {
    const { mock, store } = setup();
    mock.on(GetSecretValueCommand).resolves({ SecretString: 'hq-pass' });
    assert.equal(await store.get('prod/harbor-hq'), 'hq-pass');
    assert.deepEqual(mock.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input), [{ SecretId: 'prod/harbor-hq' }]);
  });

  it('serves a value from cache within the TTL (5 min by default) and reads it again after', async () => {
    const { mock, c, store } = setup();
    mock.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'v1' }).resolves({ SecretString: 'v2' });
    assert.equal(await store.get('s'), 'v1');
    c.t += 5 * 60_000 - 1;
    assert.equal(await store.get('s'), 'v1');
    assert.equal(mock.commandCalls(GetSecretValueCommand).length, 1);
    c.t += 1;
    assert.equal(await store.get('s'), 'v2', 'a rotated value shows up after the TTL');
    assert.equal(mock.commandCalls(GetSecretValueCommand).length, 2);
  });

  it('concurrent readers of a secret share one request; other secrets are read apart', async () => {
    const { mock, store } = setup();
    mock.on(GetSecretValueCommand).callsFake(async (input: { SecretId: string }) => ({ SecretString: `value-of-${input.SecretId}` }));
    assert.deepEqual(await Promise.all([store.get('a'), store.get('a'), store.get('b')]), ['value-of-a', 'value-of-a', 'value-of-b']);
    assert.deepEqual(mock.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId).sort(), ['a', 'b']);
  });

  it('a failure is not cached; its error names the secret and never a value', async () => {
    const { mock, c, store } = setup(1000);
    mock
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'old-s3cret-value' })
      .rejectsOnce(new SecretNotFound({ message: "Secrets Manager can't find the specified secret.", ...meta }))
      .resolves({ SecretString: 'new-s3cret-value' });
    assert.equal(await store.get('prod/db'), 'old-s3cret-value');
    c.t += 1000;
    await assert.rejects(store.get('prod/db'), (err: ReplicatorError) => {
      assert.equal(err.code, 'SECRET_UNREADABLE');
      assert.match(err.message, /"prod\/db": ResourceNotFoundException: Secrets Manager can't find/);
      assert.doesNotMatch(err.message, /s3cret-value/);
      return true;
    });
    assert.equal(await store.get('prod/db'), 'new-s3cret-value', 'tried again at once');
  });

  it('a binary secret is refused by name, without its bytes', async () => {
    const { mock, store } = setup();
    mock.on(GetSecretValueCommand).resolves({ SecretBinary: new TextEncoder().encode('binary-s3cret') });
    await assert.rejects(store.get('prod/cert'), (err: ReplicatorError) => {
      assert.equal(err.code, 'SECRET_BINARY');
      assert.match(err.message, /"prod\/cert" is binary/);
      assert.doesNotMatch(err.message, /binary-s3cret/);
      return true;
    });
  });

  it('resolves {secret: ...} references of the config, naming the config path on failure', async () => {
    const { mock, store } = setup();
    mock.on(GetSecretValueCommand, { SecretId: 'ok' }).resolves({ SecretString: 'pw' });
    mock.on(GetSecretValueCommand, { SecretId: 'gone' }).rejects(new SecretNotFound({ message: 'not found', ...meta }));
    assert.equal(await resolveSecret({ secret: 'ok' }, 'registries[0].credential.password', { store }), 'pw');
    await assert.rejects(resolveSecret({ secret: 'gone' }, 'registries[1].credential.password', { store }), /registries\[1\]\.credential\.password: cannot read secret gone/);
  });

  it('writes (API literals): CreateSecret with its tags, PutSecretValue when it exists; the new value is read at once; errors name the secret, never the value', async () => {
    const { mock, store } = setup();
    mock.on(GetSecretValueCommand).resolves({ SecretString: 'old-value' });
    assert.equal(await store.get('api/r1'), 'old-value');
    mock.on(CreateSecretCommand).resolvesOnce({}).rejects(new ResourceExistsException({ message: 'exists', ...meta }));
    mock.on(PutSecretValueCommand).resolvesOnce({}).rejects(new AccessDeniedLike());
    await store.put('api/r2', 'v2-s3cret', { 'harbor-replicator:registry': 'r2' });
    assert.deepEqual(mock.commandCalls(CreateSecretCommand)[0]!.args[0].input, { Name: 'api/r2', SecretString: 'v2-s3cret', Tags: [{ Key: 'harbor-replicator:registry', Value: 'r2' }] });
    await store.put('api/r1', 'new-value');
    assert.deepEqual(mock.commandCalls(PutSecretValueCommand).map((c) => c.args[0].input), [{ SecretId: 'api/r1', SecretString: 'new-value' }]);
    assert.equal(await store.get('api/r1'), 'new-value', 'the cached old value is replaced');
    await assert.rejects(store.put('api/r1', 'third-s3cret'), (err: ReplicatorError) => {
      assert.equal(err.code, 'SECRET_UNWRITABLE');
      assert.match(err.message, /"api\/r1": AccessDeniedException/);
      assert.doesNotMatch(err.message, /third-s3cret/);
      return true;
    });
  });
});

/** An AWS error of another kind than ResourceExistsException. */
class AccessDeniedLike extends Error {
  override name = 'AccessDeniedException';
  constructor() {
    super('not authorized to perform secretsmanager:PutSecretValue');
  }
}

describe('EventBridgeSchedules', () => {
  const GROUP = 'replicator-api';
  const ROLE = 'arn:aws:iam::123456789012:role/scheduler';
  const QUEUE = 'arn:aws:sqs:eu-west-1:123456789012:executions';
  const rule = (name: string, trigger: unknown, extra: Record<string, unknown> = {}): RuleConfig =>
    ruleSchema.parse({ name, src_registry: 'a', dest_registry: 'b', trigger, ...extra });
  const scheduled = (name: string, cron: string, timezone?: string, extra: Record<string, unknown> = {}) =>
    rule(name, { type: 'scheduled', trigger_settings: { cron, ...(timezone ? { timezone } : {}) } }, extra);
  /** The schedule this store should send for a rule. */
  const spec = (name: string, ruleName: string, expression: string, timezone = 'UTC'): GetScheduleOutput => ({
    Name: name,
    GroupName: GROUP,
    Description: `Runs replication rule "${ruleName}" (managed by harbor-replicator: edits are overwritten)`,
    ScheduleExpression: expression,
    ScheduleExpressionTimezone: timezone,
    FlexibleTimeWindow: { Mode: 'OFF' },
    Target: { Arn: QUEUE, RoleArn: ROLE, Input: JSON.stringify({ scheduledRule: ruleName }), RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 20 } },
    State: 'ENABLED',
  });
  const setup = () => {
    const client = new SchedulerClient({ region: 'eu-west-1', credentials });
    const mock = mockClient(client);
    return { mock, schedules: new EventBridgeSchedules({ client, group: GROUP, roleArn: ROLE, queueArn: QUEUE }) };
  };

  it('creates a schedule for each enabled scheduled rule, and none for the others', async () => {
    const { mock, schedules } = setup();
    mock.on(ListSchedulesCommand).resolves({ Schedules: [] });
    mock.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    const result = await schedules.sync([
      scheduled('nightly', '0 0 2 * * *', 'Europe/Paris'),
      scheduled('weekdays', '30 6 * * 1-5'),
      scheduled('paused', '0 0 3 * * *', undefined, { enabled: false }),
      rule('manual', { type: 'manual' }),
      rule('events', { type: 'event_based' }),
    ]);
    assert.deepEqual(result, { created: ['api-nightly', 'api-weekdays'], updated: [], deleted: [] });
    assert.deepEqual(mock.commandCalls(ListSchedulesCommand).map((c) => c.args[0].input), [{ GroupName: GROUP, NamePrefix: 'api-', MaxResults: 100 }]);
    const created = mock.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input).sort((a, b) => a.Name!.localeCompare(b.Name!));
    assert.deepEqual(created, [
      spec('api-nightly', 'nightly', 'cron(0 2 * * ? *)', 'Europe/Paris'),
      spec('api-weekdays', 'weekdays', 'cron(30 6 ? * 2-6 *)'),
    ]);
  });

  it('a rule with reconcile: gets api-reconcile-<rule> too, whose message asks for a reconcile; a name two rules would share is refused before any change', async () => {
    const { mock, schedules } = setup();
    mock.on(ListSchedulesCommand).resolves({ Schedules: [{ Name: 'api-reconcile-dropped' }] });
    mock.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    mock.on(DeleteScheduleCommand).resolves({});
    const result = await schedules.sync([
      scheduled('nightly', '0 0 2 * * *', 'Europe/Paris', { reconcile: { cron: '0 30 3 * * *', timezone: 'Europe/Berlin' } }),
      rule('events', { type: 'event_based' }, { reconcile: { cron: '15 4 * * 0' } }),
      rule('paused', { type: 'manual' }, { enabled: false, reconcile: { cron: '0 5 * * *' } }),
      rule('dropped', { type: 'manual' }),
    ]);
    assert.deepEqual(result, { created: ['api-nightly', 'api-reconcile-events', 'api-reconcile-nightly'], updated: [], deleted: ['api-reconcile-dropped'] });
    const created = mock.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input);
    const reconcile = created.find((c) => c.Name === 'api-reconcile-nightly')!;
    assert.deepEqual(reconcile, {
      ...spec('api-reconcile-nightly', 'nightly', 'cron(30 3 * * ? *)', 'Europe/Berlin'),
      Description: 'Reconciles drift of replication rule "nightly" (managed by harbor-replicator: edits are overwritten)',
      Target: { ...spec('x', 'nightly', '').Target!, Input: JSON.stringify({ scheduledRule: 'nightly', reconcile: true }) },
    });
    assert.equal(created.find((c) => c.Name === 'api-nightly')!.Target!.Input, JSON.stringify({ scheduledRule: 'nightly' }));
    assert.equal(created.find((c) => c.Name === 'api-reconcile-events')!.ScheduleExpression, 'cron(15 4 ? * 1 *)');

    const clash = setup();
    clash.mock.on(ListSchedulesCommand).resolves({ Schedules: [] });
    await assert.rejects(
      clash.schedules.sync([rule('x', { type: 'manual' }, { reconcile: { cron: '0 3 * * *' } }), scheduled('reconcile-x', '0 0 2 * * *')]),
      (err: { code?: string; message?: string }) => err.code === 'SCHEDULE_CONFLICT' && /rule "x" \(reconcile\) and rule "reconcile-x" would share the schedule api-reconcile-x|rule "reconcile-x" and rule "x" \(reconcile\)/.test(err.message ?? ''),
    );
    assert.equal(clash.mock.commandCalls(CreateScheduleCommand).length, 0);
    await assert.rejects(
      clash.schedules.sync([rule('y', { type: 'manual' }, { reconcile: { cron: '0 0 2 1 * 1' } })]),
      (err: { code?: string; message?: string }) => err.code === 'SCHEDULE_UNSUPPORTED' && /rule "y" \(reconcile\): cron "0 0 2 1 \* 1"/.test(err.message ?? ''),
    );
  });

  it('reads every page; leaves an unchanged schedule alone, updates one that differs, deletes the orphans', async () => {
    const { mock, schedules } = setup();
    mock
      .on(ListSchedulesCommand)
      .resolvesOnce({ Schedules: [{ Name: 'api-same' }, { Name: 'api-gone' }], NextToken: 'page-2' })
      .resolvesOnce({ Schedules: [{ Name: 'api-changed' }, { Name: 'api-now-manual' }] });
    mock.on(GetScheduleCommand, { Name: 'api-same' }).resolves({ ...spec('api-same', 'same', 'cron(0 1 * * ? *)'), ActionAfterCompletion: 'NONE' });
    mock.on(GetScheduleCommand, { Name: 'api-changed' }).resolves(spec('api-changed', 'changed', 'cron(0 1 * * ? *)'));
    mock.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    mock.on(DeleteScheduleCommand).resolves({});
    mock.on(DeleteScheduleCommand, { Name: 'api-gone' }).rejects(new ResourceNotFoundException({ message: 'gone', Message: 'gone', ...meta }));
    const result = await schedules.sync([scheduled('same', '0 0 1 * * *'), scheduled('changed', '0 0 4 * * *'), rule('now-manual', { type: 'manual' })]);
    assert.deepEqual(result, { created: [], updated: ['api-changed'], deleted: ['api-now-manual'] }, 'a schedule deleted meanwhile is not counted');
    assert.deepEqual(mock.commandCalls(ListSchedulesCommand).map((c) => c.args[0].input), [
      { GroupName: GROUP, NamePrefix: 'api-', MaxResults: 100 },
      { GroupName: GROUP, NamePrefix: 'api-', MaxResults: 100, NextToken: 'page-2' },
    ]);
    assert.deepEqual(mock.commandCalls(GetScheduleCommand).map((c) => c.args[0].input).sort((a, b) => a.Name!.localeCompare(b.Name!)), [
      { Name: 'api-changed', GroupName: GROUP },
      { Name: 'api-same', GroupName: GROUP },
    ]);
    assert.deepEqual(mock.commandCalls(UpdateScheduleCommand).map((c) => c.args[0].input), [spec('api-changed', 'changed', 'cron(0 4 * * ? *)')]);
    assert.deepEqual(mock.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input).sort((a, b) => a.Name!.localeCompare(b.Name!)), [
      { Name: 'api-gone', GroupName: GROUP },
      { Name: 'api-now-manual', GroupName: GROUP },
    ]);
    assert.equal(mock.commandCalls(CreateScheduleCommand).length, 0);
  });

  it('a schedule edited by hand (another role, disabled) is put back', async () => {
    const { mock, schedules } = setup();
    mock.on(ListSchedulesCommand).resolves({ Schedules: [{ Name: 'api-r' }] });
    const edited = spec('api-r', 'r', 'cron(0 1 * * ? *)');
    mock.on(GetScheduleCommand).resolves({ ...edited, State: 'DISABLED', Target: { ...edited.Target!, RoleArn: 'arn:aws:iam::123456789012:role/old' } });
    mock.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    assert.deepEqual(await schedules.sync([scheduled('r', '0 0 1 * * *')]), { created: [], updated: ['api-r'], deleted: [] });
    assert.deepEqual(mock.commandCalls(UpdateScheduleCommand)[0]?.args[0].input, spec('api-r', 'r', 'cron(0 1 * * ? *)'));
  });

  it('a schedule created meanwhile by another sync (ConflictException) is compared and updated instead', async () => {
    const { mock, schedules } = setup();
    mock.on(ListSchedulesCommand).resolves({ Schedules: [] });
    mock.on(CreateScheduleCommand).rejects(new ConflictException({ message: 'exists', Message: 'exists', ...meta }));
    mock.on(GetScheduleCommand).resolves(spec('api-r', 'r', 'cron(0 9 * * ? *)'));
    mock.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    assert.deepEqual(await schedules.sync([scheduled('r', '0 0 1 * * *')]), { created: [], updated: ['api-r'], deleted: [] });
  });

  it('a cron EventBridge cannot run fails the sync naming the rule, before any request', async () => {
    const { mock, schedules } = setup();
    await assert.rejects(schedules.sync([scheduled('fine', '0 0 1 * * *'), scheduled('both-days', '0 0 1 1 * MON')]), (err: ReplicatorError) => {
      assert.ok(err instanceof ReplicatorError);
      assert.equal(err.code, 'SCHEDULE_UNSUPPORTED');
      assert.match(err.message, /^rule "both-days": cron "0 0 1 1 \* MON" cannot run on EventBridge Scheduler: .*day-of-month and day-of-week/);
      return true;
    });
    assert.equal(mock.calls().length, 0);
  });

  it('an AWS failure names the schedule and the operation', async () => {
    const { mock, schedules } = setup();
    mock.on(ListSchedulesCommand).resolves({ Schedules: [] });
    mock.on(CreateScheduleCommand).rejects(Object.assign(new Error('Invalid timezone'), { name: 'ValidationException' }));
    await assert.rejects(schedules.sync([scheduled('r', '0 0 1 * * *')]), /^ReplicatorError: schedule replicator-api\/api-r: CreateSchedule failed: ValidationException: Invalid timezone$/);
  });

  it('schedule names fit Scheduler: 64 characters at most, long rule names kept apart by a hash', () => {
    assert.equal(scheduleName('api-', 'nightly.v2_eu'), 'api-nightly.v2_eu');
    const a = scheduleName('api-', `${'x'.repeat(100)}-a`);
    const b = scheduleName('api-', `${'x'.repeat(100)}-b`);
    assert.equal(a.length, 64);
    assert.notEqual(a, b);
    assert.match(a, /^api-x+-[0-9a-f]{8}$/);
    assert.throws(() => new EventBridgeSchedules({ client: new SchedulerClient({ region: 'eu-west-1', credentials }), group: 'g', roleArn: 'r', queueArn: 'q', prefix: 'bad prefix' }), /prefix/);
  });
});

describe('ECR API (mocked)', () => {
  const setup = (opts: { refreshMarginMs?: number } = {}) => {
    const client = new ECRClient({ region: 'eu-west-1', credentials });
    const mock = mockClient(client);
    const regions: string[] = [];
    const c = clock();
    const ecr = new EcrRegistries({ clientFor: (region) => (regions.push(region), client), now: c.now, ...opts });
    return { mock, regions, c, ecr };
  };
  const token = (password: string, expiresAt: number) => ({
    authorizationData: [{ authorizationToken: b64(`AWS:${password}`), expiresAt: new Date(expiresAt), proxyEndpoint: `https://${ECR_HOST}` }],
  });

  it('parses account and region from an ECR host; other hosts are not ECR', () => {
    assert.deepEqual(parseEcrHost(ECR_HOST), { accountId: '123456789012', region: 'eu-west-1' });
    assert.deepEqual(parseEcrHost('210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn'), { accountId: '210987654321', region: 'cn-north-1' });
    assert.equal(parseEcrHost('registry.example.com'), undefined);
    assert.equal(parseEcrHost('123.dkr.ecr.eu-west-1.amazonaws.com'), undefined);
  });

  it('registry credentials: GetAuthorizationToken {} decoded to AWS:<password>, cached until 30 min before expiry, then refreshed', async () => {
    const { mock, regions, c, ecr } = setup();
    const expires = c.t + 12 * 3600_000;
    mock.on(GetAuthorizationTokenCommand).resolvesOnce(token('pw-1', expires)).resolves(token('pw-2', expires + 12 * 3600_000));
    const provider = ecr.credentialsFor(ECR_HOST);
    assert.deepEqual(await provider(), { username: 'AWS', password: 'pw-1' });
    c.t = expires - 30 * 60_000 - 1;
    assert.deepEqual(await provider(), { username: 'AWS', password: 'pw-1' });
    assert.equal(mock.commandCalls(GetAuthorizationTokenCommand).length, 1);
    c.t += 1;
    assert.deepEqual(await provider(), { username: 'AWS', password: 'pw-2' });
    assert.deepEqual(mock.commandCalls(GetAuthorizationTokenCommand).map((x) => x.args[0].input), [{}, {}]);
    assert.deepEqual(regions, ['eu-west-1'], 'one client, made for the host\'s region');
  });

  it('one token request at a time, shared by the registries of a region; a failure is not cached and names no token', async () => {
    const { mock, c, ecr } = setup();
    mock
      .on(GetAuthorizationTokenCommand)
      .rejectsOnce(Object.assign(new Error('User is not authorized to perform: ecr:GetAuthorizationToken'), { name: 'AccessDeniedException' }))
      .resolvesOnce({ authorizationData: [{ authorizationToken: b64('no-colon-s3cret'), expiresAt: new Date(c.t + 3600_000) }] })
      .resolves(token('pw', c.t + 12 * 3600_000));
    await assert.rejects(ecr.credentialsFor(ECR_HOST)(), /^ReplicatorError: ECR GetAuthorizationToken in eu-west-1 failed: AccessDeniedException: User is not authorized/);
    await assert.rejects(ecr.credentialsFor(ECR_HOST)(), (err: Error) => /no token of the form/.test(err.message) && !err.message.includes('s3cret'));
    const other = '210987654321.dkr.ecr.eu-west-1.amazonaws.com';
    const got = await Promise.all([ecr.credentialsFor(ECR_HOST)(), ecr.credentialsFor(ECR_HOST)(), ecr.credentialsFor(other)()]);
    assert.deepEqual(got.map((x) => x.password), ['pw', 'pw', 'pw']);
    assert.equal(mock.commandCalls(GetAuthorizationTokenCommand).length, 3);
  });

  it('a host that is not ECR is refused by name', () => {
    const { ecr } = setup();
    assert.throws(() => ecr.credentialsFor('registry.example.com'), (err: ReplicatorError) => err.code === 'ECR_HOST' && /"registry\.example\.com" is not an ECR registry host/.test(err.message));
  });

  it('an existing repository: DescribeRepositories {registryId, repositoryNames} only, once per process', async () => {
    const { mock, ecr } = setup();
    mock.on(DescribeRepositoriesCommand).resolves({ repositories: [{ repositoryName: 'team/app' }] });
    const repos = ecr.repositoriesAt(ECR_HOST);
    assert.deepEqual(await Promise.all([repos.ensure('team/app'), repos.ensure('team/app')]), ['exists', 'exists']);
    assert.equal(await ecr.repositoriesAt(ECR_HOST).ensure('team/app'), 'exists');
    assert.deepEqual(mock.commandCalls(DescribeRepositoriesCommand).map((c) => c.args[0].input), [{ registryId: '123456789012', repositoryNames: ['team/app'] }]);
    assert.equal(mock.commandCalls(CreateRepositoryCommand).length, 0);
  });

  it('a missing repository is created with CreateRepository {registryId, repositoryName}', async () => {
    const { mock, ecr } = setup();
    mock.on(DescribeRepositoriesCommand).rejects(new RepositoryNotFoundException({ message: 'not found', ...meta }));
    mock.on(CreateRepositoryCommand).resolves({ repository: { repositoryName: 'team/new' } });
    assert.equal(await ecr.repositoriesAt(ECR_HOST).ensure('team/new'), 'created');
    assert.deepEqual(mock.commandCalls(CreateRepositoryCommand).map((c) => c.args[0].input), [{ registryId: '123456789012', repositoryName: 'team/new' }]);
  });

  it('losing the creation race (RepositoryAlreadyExistsException) is success', async () => {
    const { mock, ecr } = setup();
    mock.on(DescribeRepositoriesCommand).rejects(new RepositoryNotFoundException({ message: 'not found', ...meta }));
    mock.on(CreateRepositoryCommand).rejects(new RepositoryAlreadyExistsException({ message: 'exists', ...meta }));
    assert.equal(await ecr.repositoriesAt(ECR_HOST).ensure('team/raced'), 'exists');
  });

  it('a failure names the repository and is tried again by the next caller', async () => {
    const { mock, ecr } = setup();
    mock
      .on(DescribeRepositoriesCommand)
      .rejectsOnce(Object.assign(new Error('not authorized to perform: ecr:DescribeRepositories'), { name: 'AccessDeniedException' }))
      .resolves({ repositories: [] });
    const repos = ecr.repositoriesAt(ECR_HOST);
    await assert.rejects(repos.ensure('team/app'), (err: ReplicatorError) => {
      assert.equal(err.code, 'ECR_REPOSITORY');
      assert.equal(err.message, `${ECR_HOST}/team/app: ECR DescribeRepositories failed: AccessDeniedException: not authorized to perform: ecr:DescribeRepositories`);
      return true;
    });
    assert.equal(await repos.ensure('team/app'), 'exists');
  });
});

describe('ECR wiring', () => {
  let src: TestRegistry;
  let ecrLike: TestRegistry;
  let ecrProxy: FaultProxy;
  let issuer: TokenIssuer;
  let tokenReg: TestRegistry;
  let imageA: Layout;
  let imageB: Layout;
  let embedded: EmbeddedStore;

  before(async () => {
    // A Basic-auth registry standing in for ECR: user AWS, the token's password.
    const htpasswd = await htpasswdFile('AWS', 'ecr-token-pw');
    issuer = await startTokenIssuer({ AWS: 'ecr-token-pw' });
    [src, ecrLike, tokenReg] = await Promise.all([
      startRegistry(),
      startRegistry({ htpasswd }),
      startRegistry({ token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootcertbundle: issuer.rootcertbundle } }),
    ]);
    ecrProxy = await startFaultProxy(ecrLike.host);
    [imageA, imageB] = await Promise.all([imageLayout([{ size: 40_000 }]), imageLayout([{ size: 50_000 }])]);
    await pushLayout(imageA, `${src.host}/library/a:1`);
    await pushLayout(imageB, `${src.host}/library/b:1`);
    embedded = await openEmbeddedStore(join(await mkdtemp(join(tmpdir(), 'hr-aws-')), 'state'));
  });
  after(async () => {
    await embedded?.close();
    await Promise.all([src?.stop(), ecrLike?.stop(), tokenReg?.stop(), ecrProxy?.stop(), issuer?.stop()]);
  });

  /** ECR's API answering tokens for the stand-in registry's password. */
  const mockedEcr = () => {
    const client = new ECRClient({ region: 'eu-west-1', credentials });
    const mock = mockClient(client);
    mock.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ authorizationToken: b64('AWS:ecr-token-pw'), expiresAt: new Date(Date.now() + 12 * 3600_000) }] });
    mock.on(DescribeRepositoriesCommand).rejects(new RepositoryNotFoundException({ message: 'not found', ...meta }));
    mock.on(CreateRepositoryCommand).resolves({});
    const made: string[] = [];
    return { mock, made, ecr: new EcrRegistries({ clientFor: (region) => (made.push(region), client) }) };
  };

  it('ECR tokens are registry credentials: a copy authenticates with them (Basic and Bearer), one token for all requests', async () => {
    const { mock, ecr } = mockedEcr();
    const provider = ecr.credentialsFor(ECR_HOST);
    for (const reg of [ecrLike, tokenReg]) {
      const ref = parseReference(`${reg.host}/team/app:1`);
      await copyImage(
        { client: new RegistryClient({ host: src.host, scheme: 'http', retry: FAST }), ref: parseReference(`${src.host}/library/a:1`) },
        { client: new RegistryClient({ host: reg.host, scheme: 'http', retry: FAST, credentials: provider }), ref },
      );
    }
    assert.equal(await manifestDigest(ecrLike.url, 'team/app', '1', basic('AWS', 'ecr-token-pw')), imageA.top.digest);
    assert.equal(mock.commandCalls(GetAuthorizationTokenCommand).length, 1);
  });

  it('RegistryClients: an aws-ecr registry without credential gets ECR tokens; with one, ECR is not used', async () => {
    const { made, ecr } = mockedEcr();
    const loaded = parseConfig(
      `registries:
  - {name: ecr, type: aws-ecr, url: "https://${ECR_HOST}"}
  - {name: ecr-static, type: aws-ecr, url: "https://${ECR_HOST}", credential: {username: AWS, password: {env: ECR_PW}}}
  - {name: not-ecr, type: aws-ecr, url: "https://registry.example.com"}
`,
      'test.yaml',
    );
    const clients = new RegistryClients({ secrets: { env: { ECR_PW: 'static-pw' } }, ecr: async () => ecr });
    const staticClient = await clients.get(loaded.registry('ecr-static'));
    assert.deepEqual(staticClient.options.credentials, { username: 'AWS', password: 'static-pw' });
    assert.deepEqual(made, [], 'no ECR client for a registry with credentials');
    const client = await clients.get(loaded.registry('ecr'));
    assert.equal(typeof client.options.credentials, 'function');
    assert.deepEqual(await (client.options.credentials as () => Promise<unknown>)(), { username: 'AWS', password: 'ecr-token-pw' });
    assert.deepEqual(made, ['eu-west-1']);
    await assert.rejects(clients.get(loaded.registry('not-ecr'), 'registries[2]'), /^ReplicatorError: registries\[2\] \(aws-ecr, no credential\): "registry\.example\.com" is not an ECR registry host/);
  });

  it('rule runtime: create_repositories gives an ECR destination a repository hook, done once per repository', async () => {
    const { mock, ecr } = mockedEcr();
    const loaded = parseConfig(
      `registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: ecr, type: aws-ecr, url: "https://${ECR_HOST}", create_repositories: true}
  - {name: ecr-no-create, type: aws-ecr, url: "https://${ECR_HOST}"}
rules:
  - {name: create, src_registry: src, dest_registry: ecr}
  - {name: no-create, src_registry: src, dest_registry: ecr-no-create}
`,
      'test.yaml',
    );
    const clients = new RegistryClients({ secrets: {}, ecr: async () => ecr });
    const rt = await ruleRuntime(loaded, 'create', clients, { secrets: {} });
    await Promise.all([rt.ensureDestinationRepository!('team/app'), rt.ensureDestinationRepository!('team/app')]);
    await rt.ensureDestinationRepository!('team/other');
    assert.deepEqual(mock.commandCalls(CreateRepositoryCommand).map((c) => c.args[0].input.repositoryName), ['team/app', 'team/other']);
    const again = await ruleRuntime(loaded, 'create', clients, { secrets: {} });
    await again.ensureDestinationRepository!('team/app');
    assert.equal(mock.commandCalls(DescribeRepositoriesCommand).length, 2, 'once per process, across runtimes');
    assert.equal((await ruleRuntime(loaded, 'no-create', clients, { secrets: {} })).ensureDestinationRepository, undefined);
  });

  it('an aws-ecr destination is copied with one streamed PUT per blob, whatever copy_by_chunk says; the repository hook runs first', async () => {
    const loaded = parseConfig(
      `registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: ecr, type: aws-ecr, url: "http://${ecrProxy.host}", credential: {username: AWS, password: {env: ECR_PW}}}
  - {name: plain, type: docker-registry, url: "http://${ecrProxy.host}", credential: {username: AWS, password: {env: ECR_PW}}}
rules:
  - {name: to-ecr, src_registry: src, dest_registry: ecr, dest_namespace: e, copy_by_chunk: true, filters: [{type: name, value: library/a}]}
  - {name: to-plain, src_registry: src, dest_registry: plain, dest_namespace: p, copy_by_chunk: true, filters: [{type: name, value: library/b}]}
`,
      'test.yaml',
    );
    const secrets = { env: { ECR_PW: 'ecr-token-pw' } };
    const clients = new RegistryClients({ secrets, hosts: new HostStates(FAST) });
    const patches = (repo: string) => ecrProxy.log.filter((x) => x.method === 'PATCH' && x.path.startsWith(`/v2/${repo}/blobs/uploads/`)).length;
    const ensured: string[] = [];
    const rt = await ruleRuntime(loaded, 'to-ecr', clients, { secrets });
    const e = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config: loaded, runtime: { ...rt, ensureDestinationRepository: async (repo) => void ensured.push(repo) }, trigger: 'manual' });
    assert.equal(e.status, 'Succeed');
    assert.equal(await manifestDigest(ecrLike.url, 'e/a', '1', basic('AWS', 'ecr-token-pw')), imageA.top.digest);
    assert.deepEqual(ensured, ['e/a']);
    assert.equal(patches('e/a'), 0, 'no PATCH to ECR');
    assert.ok(ecrProxy.log.some((x) => x.method === 'PUT' && x.path.startsWith('/v2/e/a/blobs/uploads/')));

    // The same rule into another registry type does chunk: the ECR exception is what kept it out.
    const plain = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config: loaded, runtime: await ruleRuntime(loaded, 'to-plain', clients, { secrets }), trigger: 'manual' });
    assert.equal(plain.status, 'Succeed');
    assert.ok(patches('p/b') > 0, 'docker-registry destination: chunked');
  });
});
