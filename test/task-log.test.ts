// Task logs end to end in `serve`, against registries that need credentials: a source behind
// the distribution token flow (a JWT issuer) that answers one blob GET with 429 Retry-After, a
// destination with Basic auth (htpasswd), reached once through a proxy that denies uploads. The log of each task is
// read through the API (text/plain) and the CLI (`tasks EXEC --log TASK`, through --server and
// from the data dir), shows its steps in the documented line format, and holds none of the
// secrets in play: passwords, the Basic header, the tokens the issuer handed out, the API token.
// Also: the per-rule Prometheus gauges of the last execution's status and duration.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../functions/serve/server.js';
import { TaskRunLog } from '../shared/executions/task-log.js';
import type { Task } from '../shared/executions/model.js';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { runCli } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startTokenIssuer, type TokenIssuer } from './support/token-issuer.js';

const TOKEN = 'task-log-api-t0ken-7f3a';
const SRC_PASSWORD = 'src-Pa55word-9x2q';
const DST_PASSWORD = 'dst-Pa55word-k4v8';

/** `<RFC 3339 time> <level> <step> <message> key=value...` */
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (info|warn|error) (task|resolve|blob|manifest|referrers|delete|http) \S.*$/;

describe('task logs in serve (API, CLI), with credentials in play', () => {
  let issuer: TokenIssuer;
  let src: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let dst: TestRegistry;
  let image: Layout;
  let server: RunningServer | undefined;
  let dataDir: string;
  const logs: string[] = [];
  let okExecution = '';
  let failedExecution = '';

  before(async () => {
    process.env.TL_API_TOKEN = TOKEN;
    process.env.TL_SRC_PW = SRC_PASSWORD;
    process.env.TL_DST_PW = DST_PASSWORD;
    issuer = await startTokenIssuer({ bob: SRC_PASSWORD, pusher: 'pusher-pw' });
    const htpasswd = await htpasswdFile('alice', DST_PASSWORD);
    [src, dst] = await Promise.all([
      startRegistry({ token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootcertbundle: issuer.rootcertbundle } }),
      startRegistry({ htpasswd }),
    ]);
    image = await imageLayout([{ size: 120_000 }, { size: 30_000 }], '1.0');
    await pushLayout(image, `${src.host}/library/app:1.0`, { creds: 'pusher:pusher-pw', tag: '1.0' });
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(src.host), startFaultProxy(dst.host)]);
    // Uploads through this proxy are denied (a repository the account may read but not push to).
    dstProxy.add({ method: 'POST', path: /\/v2\/.*\/blobs\/uploads\//, fault: { kind: 'status', status: 403, headers: { 'content-type': 'application/json' }, body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' }, times: 1000 });
    dataDir = join(await mkdtemp(join(tmpdir(), 'hr-task-log-')), 'state');
    server = await startServer({
      config: parseConfig(
        `
registries:
  - {name: hq, type: docker-registry, url: "http://${srcProxy.host}", credential: {username: bob, password: {env: TL_SRC_PW}}}
  - {name: branch, type: docker-registry, url: "http://${dst.host}", credential: {username: alice, password: {env: TL_DST_PW}}}
  - {name: locked, type: docker-registry, url: "http://${dstProxy.host}", credential: {username: alice, password: {env: TL_DST_PW}}}
rules:
  - {name: authed, src_registry: hq, dest_registry: branch, dest_namespace: copied, filters: [{type: name, value: library/app}]}
  - {name: refused, src_registry: hq, dest_registry: locked, dest_namespace: refused, filters: [{type: name, value: library/app}]}
  - {name: never-run, src_registry: hq, dest_registry: branch, dest_namespace: never, filters: [{type: name, value: library/app}]}
api: {token: {env: TL_API_TOKEN}}
`,
        'task-log.yaml',
      ),
      listen: '127.0.0.1:0',
      dataDir,
      log: silentLog,
      retryDelayMs: () => 50,
      graceMs: 2000,
    });
  });
  after(async () => {
    await server?.close();
    await Promise.all([srcProxy?.stop(), dstProxy?.stop(), src?.stop(), dst?.stop(), issuer?.stop()]);
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server!.url}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const logOf = async (execution: string, task: number | string) => {
    const res = await fetch(`${server!.url}/api/v1/executions/${execution}/tasks/${task}/log`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const run = async (rule: string) => {
    const created = await api('/executions', { method: 'POST', body: JSON.stringify({ rule }) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    for (let i = 0; i < 600; i++) {
      const e = (await api(`/executions/${created.body.id}`)).body;
      if (e.status !== 'InProgress') return e;
      await sleep(50);
    }
    throw new Error(`execution ${created.body.id} did not finish`);
  };

  it("a task's log shows its steps in the line format: resolve, blobs, the 429 waited out, the manifest PUT, the end", async () => {
    // The first GET of a blob from the source: 429, wait 1 s (the retry must say so).
    srcProxy.add({ method: 'GET', path: /\/v2\/library\/app\/blobs\/sha256:/, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } });
    const e = await run('authed');
    assert.equal(e.status, 'Succeed', JSON.stringify(e));
    okExecution = e.id;
    assert.equal(await manifestDigest(dst.url, 'copied/app', '1.0', basic('alice', DST_PASSWORD)), image.top.digest);
    assert.ok(e.bytes >= 150_000, `the execution's bytes: ${e.bytes}`);
    const tasks = (await api(`/executions/${e.id}/tasks`)).body.items as Array<{ id: number; bytes: number }>;
    assert.equal(tasks.length, 1);
    assert.equal(e.bytes, tasks[0]!.bytes, "the execution's bytes are its task's");

    const log = await logOf(e.id, tasks[0]!.id);
    assert.equal(log.status, 200);
    assert.match(log.type, /^text\/plain/);
    logs.push(log.text);
    const lines = log.text.trimEnd().split('\n');
    for (const l of lines) assert.match(l, LINE);
    assert.match(lines[0]!, / info task run started attempt=1 operation=copy source=hq\/library\/app:1\.0 /);
    assert.ok(lines.some((l) => / info resolve resolved /.test(l) && l.includes(`digest=${image.top.digest}`)));
    assert.ok(lines.some((l) => / warn blob retried after HTTP 429, waiting 1\.0 s: read sha256:\S+ from byte 0 attempt=1 /.test(l)), log.text);
    assert.equal(lines.filter((l) => / info blob uploaded digest=sha256:/.test(l)).length, 3, 'two layers and the config');
    assert.ok(lines.some((l) => / info manifest PUT 1\.0 digest=sha256:/.test(l)), log.text);
    assert.match(lines.at(-1)!, / info task ended Success bytes=\d+/);
  });

  it('a run refused by the destination (uploads denied): its log ends in error, the execution Failed', async () => {
    const e = await run('refused');
    assert.equal(e.status, 'Failed', JSON.stringify(e));
    failedExecution = e.id;
    const log = await logOf(e.id, 1);
    assert.equal(log.status, 200);
    logs.push(log.text);
    const lines = log.text.trimEnd().split('\n');
    for (const l of lines) assert.match(l, LINE);
    assert.match(lines.at(-1)!, / error task ended Error: .* code=DENIED/);
  });

  it('unknown execution or task: 404 with the JSON error; the OpenAPI document has the route', async () => {
    const noTask = await logOf(okExecution, 99);
    assert.equal(noTask.status, 404);
    assert.equal(JSON.parse(noTask.text).error.code, 'NOT_FOUND');
    assert.equal((await logOf(okExecution, 'x')).status, 404);
    assert.equal((await logOf('999999', 1)).status, 404);
    const unauth = await fetch(`${server!.url}/api/v1/executions/${okExecution}/tasks/1/log`);
    assert.equal(unauth.status, 401, 'the token is needed');
    const doc = (await api('/openapi.json')).body;
    assert.ok(doc.paths['/executions/{id}/tasks/{task}/log'].get.responses['200'].content['text/plain']);
    assert.equal(doc.components.schemas.Execution.properties.bytes.type, 'integer');
  });

  it('tasks EXEC --log TASK prints the same log through a running serve; bad task ids are refused', async () => {
    const env = { HARBOR_REPLICATOR_TOKEN: TOKEN };
    const r = await runCli(['tasks', okExecution, '--log', '1', '--server', server!.url], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, logs[0]);
    logs.push(r.stdout, r.stderr);
    const json = await runCli(['tasks', okExecution, '--log', '1', '--server', server!.url, '--json'], { env });
    assert.deepEqual(JSON.parse(json.stdout), logs[0]!.trimEnd().split('\n'));
    const missing = await runCli(['tasks', okExecution, '--log', '99', '--server', server!.url], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no task 99/);
    const bad = await runCli(['tasks', okExecution, '--log', 'one', '--server', server!.url], { env });
    assert.equal(bad.code, 2);
    const list = await runCli(['executions', 'list', '--server', server!.url], { env });
    assert.match(list.stdout, /BYTES/);
    assert.match(list.stdout, / 150\.9 kB /);
  });

  it('Prometheus: per rule, the last execution\'s status (1 for it, 0 for the others) and duration; a rule never run has none', async () => {
    const text = await (await fetch(`${server!.url}/metrics`)).text();
    assert.match(text, /^harbor_replicator_execution_status\{rule="authed",status="Succeed"\} 1$/m);
    assert.match(text, /^harbor_replicator_execution_status\{rule="authed",status="Failed"\} 0$/m);
    assert.match(text, /^harbor_replicator_execution_status\{rule="refused",status="Failed"\} 1$/m);
    assert.match(text, /^harbor_replicator_execution_status\{rule="refused",status="Succeed"\} 0$/m);
    const seconds = Number(/^harbor_replicator_execution_duration_seconds\{rule="authed"\} (\S+)$/m.exec(text)?.[1]);
    assert.ok(seconds >= 1 && seconds < 60, `authed took ${seconds} s (it waited out a 1 s Retry-After)`);
    assert.doesNotMatch(text, /rule="never-run"/);
    assert.doesNotMatch(text, /harbor_replicator_drift_artifacts\{/, 'no reconcile ran: no drift');
  });

  it('from the data dir once serve has stopped; no log holds a secret', async () => {
    await server!.close();
    server = undefined;
    const r = await runCli(['tasks', failedExecution, '--log', '1', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, logs[1]);
    logs.push(r.stdout, r.stderr);

    assert.ok(issuer.tokens.length > 0, 'the source handed out tokens');
    const secrets = [
      SRC_PASSWORD,
      DST_PASSWORD,
      TOKEN,
      Buffer.from(`bob:${SRC_PASSWORD}`).toString('base64'),
      Buffer.from(`alice:${DST_PASSWORD}`).toString('base64'),
      ...issuer.tokens,
      ...issuer.tokens.map((t) => t.split('.')[2]!), // the signature alone
    ];
    const all = logs.join('\n');
    assert.ok(all.length > 1000, `${all.length} characters of logs`);
    for (const s of secrets) assert.ok(!all.includes(s), `a secret in a log: ${s.slice(0, 12)}...`);
    assert.doesNotMatch(all, /authorization|bearer [a-z0-9]|basic [a-z0-9]/i);
  });
});

describe("a run's log lines for referrers", () => {
  it('each referrer copied, in sync, kept or failed is a line of step referrers; a failure is an error, its text scrubbed', () => {
    const task = { executionId: '1', id: 1, revision: 1, attempts: 1, operation: 'copy', source: { registry: 'hq', repository: 'library/app', tags: ['1.0'] }, destination: { registry: 'branch', repository: 'app', tags: ['1.0'] } } as unknown as Task;
    const log = new TaskRunLog(task, () => Date.parse('2026-11-30T00:00:00Z'));
    const digest = `sha256:${'a'.repeat(64)}`;
    const subject = `sha256:${'b'.repeat(64)}`;
    log.referrer({ kind: 'referrer', subject, depth: 0, digest, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', via: 'referrers-api', status: 'copied' });
    log.referrer({ kind: 'referrer', subject, depth: 1, digest, tag: 'sha256-bbb.sig', artifactType: undefined, via: 'tag', status: 'failed', error: 'GET https://user:pw@hq/v2/x answered 500 with Bearer abcdefghijklmnop' });
    const [copied, failed] = log.lines();
    assert.match(copied!, LINE);
    assert.equal(copied, `2026-11-30T00:00:00.000Z info referrers copied ${digest} digest=${digest} artifact_type=application/vnd.dev.cosign.artifact.sig.v1+json via=referrers-api subject=${subject}`);
    assert.match(failed!, /^\S+ error referrers sha256-bbb\.sig failed: GET https:\/\/\S+ answered 500 with Bearer REDACTED digest=\S+ via=tag subject=\S+ depth=1$/);
    assert.doesNotMatch(failed!, /user:pw|abcdefghijklmnop/);
  });
});
