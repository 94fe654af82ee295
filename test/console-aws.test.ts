// `harbor-replicator console --aws`: the console on this machine for an API behind IAM. A local
// stand-in plays API Gateway: it checks the SigV4 signature of every forwarded request with its
// own code (test/support/sigv4-stand-in.ts) and passes the valid ones to a real serve. The page
// signs in with the printed one-time code (in chromium); a foreign Origin, another Host (DNS
// rebinding) and a wrong code are refused before anything is forwarded; no AWS secret, signature
// or AWS header reaches the browser.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parseApiUrl, startAwsConsole, type RunningAwsConsole } from '../functions/console/aws-console.js';
import { startServer, type RunningServer } from '../functions/serve/server.js';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { axeViolations, launchChromium, screenshot } from './support/browser.js';
import { CLI, runCli } from './support/cli.js';
import { imageLayout, pushLayout } from './support/fixtures.js';
import { startRegistry, stopProcess, type TestRegistry } from './support/registry.js';
import { checkSigV4, startSigV4StandIn, type SigV4Keys, type SigV4StandIn } from './support/sigv4-stand-in.js';

const TOKEN = 'aws-console-serve-t0ken';
const REGION = 'eu-west-1';
const KEYS: SigV4Keys = { accessKeyId: 'AKIDCONSOLETEST0001', secretAccessKey: 'console-test-secret/Key+0123456789abcdefABCDEF', sessionToken: 'console-test-session-token-xyz' };

/** A request with any Host and headers (fetch would set its own Host). */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('console --aws: a local console forwarding SigV4-signed calls', { timeout: 120_000 }, () => {
  let registry: TestRegistry;
  let server: RunningServer;
  let standIn: SigV4StandIn;
  let local: RunningAwsConsole;
  let executionId: string;

  before(async () => {
    registry = await startRegistry();
    await pushLayout(await imageLayout([{ size: 20_000 }]), `${registry.host}/library/app:1.0`);
    process.env.AWS_CONSOLE_TEST_TOKEN = TOKEN;
    const config = `
registries:
  - {name: hq, type: docker-registry, url: "http://${registry.host}"}
  - {name: branch, type: docker-registry, url: "http://${registry.host}"}
rules:
  - {name: mirror, src_registry: hq, dest_registry: branch, dest_namespace: mirror, filters: [{type: name, value: "library/**"}]}
api: {token: {env: AWS_CONSOLE_TEST_TOKEN}}
`;
    server = await startServer({ config: parseConfig(config, 'aws-console.yaml'), listen: '127.0.0.1:0', dataDir: join(await mkdtemp(join(tmpdir(), 'hr-aws-console-')), 'state'), log: silentLog, graceMs: 1000 });
    // API Gateway's part: the signature checked, then the API function (here serve, with its token).
    standIn = await startSigV4StandIn(KEYS, { region: REGION, service: 'execute-api' }, async (req) => {
      const res = await fetch(`${server.url}${req.url}`, {
        method: req.method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(req.headers['content-type'] ? { 'content-type': String(req.headers['content-type']) } : {}) },
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req.body,
      });
      // What API Gateway adds, which must stay on the console's side.
      return {
        status: res.status,
        headers: { 'content-type': res.headers.get('content-type') ?? 'application/octet-stream', 'x-amzn-requestid': 'req-123', 'apigw-requestid': 'gw-456', 'set-cookie': 'AWSALB=sticky; Path=/' },
        body: Buffer.from(await res.arrayBuffer()),
      };
    });
    local = await startAwsConsole({ apiUrl: `${standIn.url}/api/v1`, region: REGION, listen: '127.0.0.1:0', credentials: async () => KEYS, code: 'the-one-time-code' });
    const run = await raw(`${local.url}/api/v1/executions`, { method: 'POST', headers: { authorization: 'Bearer the-one-time-code', 'content-type': 'application/json' }, body: JSON.stringify({ rule: 'mirror' }) });
    assert.equal(run.status, 201, `${run.body} ${standIn.requests.map((r) => r.refused).join(", ")}`);
    executionId = JSON.parse(run.body).id;
    for (let i = 0; i < 200; i++) {
      const e = (await (await fetch(`${server.url}/api/v1/executions/${executionId}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { status: string };
      if (e.status !== 'InProgress') break;
      await sleep(50);
    }
  });
  after(async () => {
    await local?.close();
    await standIn?.close();
    await server?.close();
    await registry?.stop();
  });

  it('each forwarded call is signed (path, query, body, session token) and its answer comes back without AWS headers', async () => {
    const before = standIn.requests.length;
    const code = { authorization: 'Bearer the-one-time-code' };
    const list = await raw(`${local.url}/api/v1/executions?rule=mirror&limit=5`, { headers: { ...code, cookie: 'session=browser-cookie' } });
    assert.equal(list.status, 200);
    assert.equal(JSON.parse(list.body).items[0].id, executionId);
    // A path segment that needs encoding (signed with each segment encoded twice), and a body.
    const unknown = await raw(`${local.url}/api/v1/rules/no%20such%20rule`, { headers: code });
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).error.message, 'no rule named "no such rule"', 'the encoded segment reached the API as it was');
    const ping = await raw(`${local.url}/api/v1/registries/hq/ping`, { method: 'POST', headers: { ...code, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(ping.status, 200);
    assert.equal(JSON.parse(ping.body).ok, true);
    const seen = standIn.requests.slice(before);
    assert.equal(seen.length, 3);
    for (const r of seen) {
      assert.equal(r.refused, undefined, `${r.method} ${r.url}: ${r.refused}`);
      assert.equal(r.region, REGION);
      assert.equal(r.service, 'execute-api');
      assert.match(String(r.headers.authorization), /^AWS4-HMAC-SHA256 /, 'the code is replaced by the signature');
      assert.equal(r.headers.cookie, undefined, "the browser's cookies stay here");
    }
    assert.equal(seen[0]!.url, '/api/v1/executions?rule=mirror&limit=5');
    assert.equal(seen[2]!.body.toString(), '{}');
    // The stand-in's check is a real one: another key, or another path, fails it.
    assert.equal(checkSigV4(seen[0]!, seen[0]!.body, { ...KEYS, secretAccessKey: 'another-secret' }, { region: REGION, service: 'execute-api' }), 'signature does not match');
    assert.equal(checkSigV4({ ...seen[0]!, url: '/api/v1/executions?rule=other&limit=5' }, seen[0]!.body, KEYS, { region: REGION, service: 'execute-api' }), 'signature does not match');
    assert.equal(checkSigV4(seen[2]!, Buffer.from('{"x":1}'), KEYS, { region: REGION, service: 'execute-api' }), 'signature does not match');
    // Back to the browser: the API's answer and content type only, with the console's own headers.
    for (const res of [list, unknown, ping]) {
      for (const h of ['x-amzn-requestid', 'apigw-requestid', 'set-cookie', 'authorization', 'x-amz-date', 'x-amz-security-token']) assert.equal(res.headers[h], undefined, h);
      assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
      for (const secret of [KEYS.secretAccessKey, KEYS.sessionToken!, KEYS.accessKeyId, 'AWS4-HMAC-SHA256']) assert.ok(!res.body.includes(secret));
    }
  });

  it('a wrong code: 401, nothing forwarded', async () => {
    const before = standIn.requests.length;
    for (const authorization of [undefined, 'Bearer not-the-code', `Bearer ${TOKEN}`]) {
      const res = await raw(`${local.url}/api/v1/rules`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401);
      assert.equal(JSON.parse(res.body).error.code, 'UNAUTHORIZED');
    }
    assert.equal(standIn.requests.length, before);
  });

  it('a request from a foreign Origin is refused, and so is a cross-site fetch; nothing forwarded', async () => {
    const before = standIn.requests.length;
    const code = { authorization: 'Bearer the-one-time-code', 'content-type': 'application/json' };
    const foreign = await raw(`${local.url}/api/v1/executions`, { method: 'POST', headers: { ...code, origin: 'https://evil.example' }, body: JSON.stringify({ rule: 'mirror' }) });
    assert.equal(foreign.status, 403);
    assert.equal(JSON.parse(foreign.body).error.code, 'FOREIGN_ORIGIN');
    // The same port on another name of this machine is another origin too.
    const port = new URL(local.url).port;
    assert.equal((await raw(`${local.url}/api/v1/rules`, { headers: { ...code, origin: `http://127.0.0.1:${Number(port) + 1}` } })).status, 403);
    assert.equal((await raw(`${local.url}/api/v1/rules`, { headers: { ...code, 'sec-fetch-site': 'cross-site' } })).status, 403);
    assert.equal((await raw(`${local.url}/`, { headers: { origin: 'null' } })).status, 403);
    // Its own origin (any of the loopback names) is fine.
    assert.equal((await raw(`${local.url}/api/v1/rules`, { headers: { ...code, origin: local.url, 'sec-fetch-site': 'same-origin' } })).status, 200);
    assert.equal((await raw(`${local.url}/api/v1/rules`, { headers: { ...code, host: `localhost:${port}`, origin: `http://localhost:${port}` } })).status, 200);
    assert.equal(standIn.requests.length, before + 2);
  });

  it('DNS rebinding: a Host other than the console\'s own is refused, on the page and the API', async () => {
    const before = standIn.requests.length;
    const port = new URL(local.url).port;
    for (const host of [`evil.example:${port}`, `rebind.attacker.test:${port}`, 'localhost:1']) {
      for (const path of ['/', '/api/v1/rules']) {
        const res = await raw(`${local.url}${path}`, { headers: { host, authorization: 'Bearer the-one-time-code' } });
        assert.equal(res.status, 403, `${host} ${path}`);
        assert.equal(JSON.parse(res.body).error.code, 'FOREIGN_HOST');
      }
    }
    assert.equal(standIn.requests.length, before);
  });

  it('the CLI prints a one-time code; chromium signs in with it and sees the rules through the signed API', async () => {
    const child: ChildProcess = spawn(process.execPath, [CLI, 'console', '--aws', '--api-url', `${standIn.url}/api/v1`, '--region', REGION, '--listen', '127.0.0.1:0'], {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: KEYS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: KEYS.secretAccessKey,
        AWS_SESSION_TOKEN: KEYS.sessionToken,
        AWS_PROFILE: undefined,
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
        AWS_EC2_METADATA_DISABLED: 'true',
      } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const browser = await launchChromium();
    try {
      for (let i = 0; i < 200 && !/one-time code/.test(stderr); i++) await sleep(50);
      const url = /console on (http:\/\/\S+?)\/ for/.exec(stderr)?.[1];
      const code = /one-time code \(valid until this command stops\): (\S+)/.exec(stderr)?.[1];
      assert.ok(url && code, stderr);
      assert.match(code, /^[A-Za-z0-9_-]{24}$/);
      for (const secret of [KEYS.secretAccessKey, KEYS.sessionToken!]) assert.ok(!stderr.includes(secret) && !stdout.includes(secret));

      const page = await browser.newPage({ viewport: { width: 1280, height: 600 } });
      page.setDefaultTimeout(15_000);
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(err.message));
      const sent: string[] = [];
      page.on('request', (r) => sent.push(`${r.url()} ${JSON.stringify(r.headers())}`));
      const received: string[] = [];
      page.on('response', async (r) => received.push(`${JSON.stringify(await r.allHeaders())} ${await r.text().catch(() => '')}`));
      await page.goto(url);
      await page.getByLabel('API token').fill('not-the-code');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').getByText(/one-time code/).waitFor();
      await page.getByLabel('API token').fill(code);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Rules' }).waitFor();
      const mirror = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /^mirror/ }) });
      await mirror.getByText('Succeed').waitFor();
      assert.deepEqual(await axeViolations(page), []);
      await screenshot(page, 'aws-console-rules');
      assert.deepEqual(problems, []);
      assert.ok(sent.every((s) => !s.includes(code) || s.includes('"authorization":"Bearer ')), 'the code travels in the Authorization header only');
      assert.ok(!page.url().includes(code));
      for (const r of received) {
        for (const secret of [KEYS.secretAccessKey, KEYS.sessionToken!, KEYS.accessKeyId, 'AWS4-HMAC-SHA256', 'x-amz-']) assert.ok(!r.includes(secret), `${secret} reached the browser`);
      }
      const forwarded = standIn.requests.filter((r) => r.headers['x-amz-security-token'] === KEYS.sessionToken);
      assert.ok(forwarded.length >= 2, 'the page called the API through the CLI, with the credentials of the environment');
      assert.ok(forwarded.every((r) => r.refused === undefined));
    } finally {
      await browser.close();
      await stopProcess(child);
    }
  });

  it('refuses to start: a network --listen, plain HTTP to another host, a URL without region, no --aws, no credentials', async () => {
    assert.deepEqual(
      (({ base, region }) => ({ base: base.href, region }))(parseApiUrl('https://a1b2c3.execute-api.eu-central-1.amazonaws.com/api/v1/')),
      { base: 'https://a1b2c3.execute-api.eu-central-1.amazonaws.com/', region: 'eu-central-1' },
    );
    assert.equal(parseApiUrl('https://a1b2c3.execute-api.cn-north-1.amazonaws.com.cn').region, 'cn-north-1');
    assert.throws(() => parseApiUrl('https://api.example.com/api/v1'), /does not name a region .*--region/);
    assert.equal(parseApiUrl('https://api.example.com/api/v1', 'us-east-2').region, 'us-east-2');
    assert.throws(() => parseApiUrl('http://a1b2c3.execute-api.eu-west-1.amazonaws.com/api/v1'), /http: is not allowed/);
    assert.throws(() => parseApiUrl('https://user:pw@a1b2c3.execute-api.eu-west-1.amazonaws.com/api/v1'), /no credentials/);
    const creds = async () => KEYS;
    await assert.rejects(startAwsConsole({ apiUrl: `${standIn.url}/api/v1`, region: REGION, listen: '0.0.0.0:0', credentials: creds }), /not a loopback address/);
    await assert.rejects(
      startAwsConsole({ apiUrl: `${standIn.url}/api/v1`, region: REGION, listen: '127.0.0.1:0', credentials: async () => Promise.reject(new Error('Could not load credentials from any providers')) }),
      (err: Error & { code?: string }) => err.code === 'AWS_CREDENTIALS' && /default chain/.test(err.message),
    );
    const noAws = await runCli(['console', '--api-url', 'https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api/v1']);
    assert.equal(noAws.code, 2);
    assert.match(noAws.stderr, /needs --aws/);
    const network = await runCli(['console', '--aws', '--api-url', 'https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api/v1', '--listen', '0.0.0.0:8081']);
    assert.equal(network.code, 2);
    assert.match(network.stderr, /not a loopback address/);
  });
});
