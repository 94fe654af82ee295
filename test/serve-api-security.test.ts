// `serve`'s management API driven over HTTP as an untrusted caller would (issue 10: "API callers
// are not the operator"): credentials that would read the server's environment or files, literal
// secrets and how they are kept, what ping tells, registry URLs at forbidden addresses (checked
// up front and again at connect time, on resolved addresses), secret references outside the
// allowed names, entries an older version stored, cursors, the Bearer scheme, userinfo URLs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import type { Log } from '../shared/observability/telemetry.js';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { startServer, type RunningServer, type ServerOptions } from '../functions/serve/server.js';
import { runCli } from './support/cli.js';
import { htpasswdFile } from './support/fixtures.js';
import { startListener, type RecordingListener } from './support/listener.js';
import { freePort, startRegistry, type TestRegistry } from './support/registry.js';

const TOKEN = 'api-security-t0ken';
const MARKER = 'MARKER-7f3a9c-internal-text';

/** Every file under `dir`, read as bytes (the data dir: the SQLite state file and its WAL). */
async function filesUnder(dir: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

/** A Log that keeps what it is given. */
function capturingLog(): Log & { lines: Array<{ level: string; message: string; extra: unknown[] }> } {
  const lines: Array<{ level: string; message: string; extra: unknown[] }> = [];
  return {
    lines,
    info: (message, ...extra) => void lines.push({ level: 'info', message, extra }),
    warn: (message, ...extra) => void lines.push({ level: 'warn', message, extra }),
    error: (message, ...extra) => void lines.push({ level: 'error', message, extra }),
  };
}

const apiOf = (server: () => RunningServer) => async (path: string, init: RequestInit & { token?: string } = {}) => {
  const res = await fetch(`${server().url}/api/v1${path}`, {
    ...init,
    headers: { authorization: init.token ?? `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
};
const json = (v: unknown) => ({ method: 'POST', body: JSON.stringify(v) });

describe('serve API: callers are not the operator (encryption key set, no host allow-list)', () => {
  const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
  let reg: TestRegistry;
  let listener: RecordingListener;
  let html: RecordingListener;
  let hanging: RecordingListener;
  let dir: string;
  let server: RunningServer;
  const api = apiOf(() => server);

  before(async () => {
    process.env.HR_SEC_API_TOKEN = TOKEN;
    process.env.HR_SEC_ENC_KEY = randomBytes(32).toString('base64');
    process.env.HR_SEC_ROBOT_PW = PASSWORD;
    reg = await startRegistry({ htpasswd: await htpasswdFile('robot', PASSWORD) });
    // A listener standing in for an internal service: every answer carries text a caller must never see.
    listener = await startListener((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: `${MARKER}-CODE`, message: `${MARKER} secret internals` }] }));
    });
    html = await startListener((_req, res) => void res.writeHead(404, { 'content-type': 'text/html' }).end(`<html>${MARKER} admin console</html>`));
    hanging = await startListener(() => {}); // accepts, never answers
    dir = await mkdtemp(join(tmpdir(), 'hr-serve-sec-'));
    const config = `
registries:
  - {name: htp, type: docker-registry, url: "http://${reg.host}", credential: {username: robot, password: {env: HR_SEC_ROBOT_PW}}}
rules:
  - {name: noop, src_registry: htp, dest_registry: htp, dest_namespace: copy, filters: [{type: name, value: "nothing/here"}]}
api:
  token: {env: HR_SEC_API_TOKEN}
  encryption_key: {env: HR_SEC_ENC_KEY}
  secret_prefix: harbor-replicator/test/api/
  allowed_secrets: [team/allowed]
`;
    server = await startServer({
      config: parseConfig(config, 'serve-sec.yaml'),
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'state'),
      log: silentLog,
      pingTimeoutMs: 1500,
    } as ServerOptions);
  });
  after(async () => {
    await server?.close();
    await Promise.all([listener?.stop(), html?.stop(), hanging?.stop(), reg?.stop()]);
  });

  it('credentials that would read the environment, a file or Docker config: 400 naming the field, nothing stored, nothing sent', async () => {
    const before = listener.requests.length;
    const cases: Array<[unknown, RegExp]> = [
      [{ username: 'x', password: { env: 'AWS_SECRET_ACCESS_KEY' } }, /^credential\.password: references of kind env are not allowed through the API/],
      [{ username: 'x', password: { file: '/proc/self/environ' } }, /^credential\.password: references of kind file are not allowed through the API/],
      [{ docker_config: true }, /^credential\.docker_config: .*not allowed through the API/],
      [{ username: 'x', password: 'literal' }, /^credential\.password: must be \{secret: NAME\}/],
      [{ type: 'oauth', access_key: 'x', access_secret: 'y' }, /^credential\.type: only "basic"/],
    ];
    for (const [i, [credential, message]] of cases.entries()) {
      const r = await api('/registries', json({ name: `evil${i}`, type: 'docker-registry', url: listener.url, credential }));
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error.message, message);
      assert.equal((await api(`/registries/evil${i}`)).status, 404, 'nothing stored');
    }
    const file = await api('/registries', json({ name: 'evilca', type: 'docker-registry', url: listener.url, ca_file: '/etc/shadow' }));
    assert.equal(file.status, 400);
    assert.match(file.body.error.message, /^ca_file: files on the server are not allowed through the API/);
    assert.equal(listener.requests.length, before, 'nothing was sent anywhere');
  });

  it('a literal credential is kept encrypted: 201, GET shows has_secret and never the secret, the data dir holds no plaintext; PUT without access_secret keeps it', async () => {
    const created = await api('/registries', json({ name: 'robot-lit', type: 'docker-registry', url: `http://${reg.host}`, credential: { type: 'basic', access_key: 'robot', access_secret: PASSWORD } }));
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.body.credential, { type: 'basic', access_key: 'robot', has_secret: true });
    const got = await api('/registries/robot-lit');
    assert.deepEqual(got.body.credential, { type: 'basic', access_key: 'robot', has_secret: true });
    assert.equal(got.body.origin, 'api');
    const list = await api('/registries');
    for (const text of [created.text, got.text, list.text]) {
      assert.ok(!text.includes(PASSWORD), 'the secret is never returned');
      assert.ok(!/access_secret|sealed|"iv"|"tag"/.test(text), 'nor its encrypted form');
    }
    assert.deepEqual((await api('/registries/robot-lit/ping', { method: 'POST' })).body, { ok: true, status: 200, code: null }, 'the stored secret authenticates');

    // At rest: the stored entry and every file of the data dir, without the plaintext.
    const files = await filesUnder(join(dir, 'state'));
    assert.ok(files.length > 0);
    for (const f of files) assert.ok(!f.bytes.includes(Buffer.from(PASSWORD)), `${f.path} holds the plaintext`);

    const kept = await api('/registries/robot-lit', { method: 'PUT', body: JSON.stringify({ name: 'robot-lit', type: 'docker-registry', url: `http://${reg.host}`, description: 'renamed', credential: { type: 'basic', access_key: 'robot' } }) });
    assert.equal(kept.status, 200, kept.text);
    assert.equal(kept.body.description, 'renamed');
    assert.deepEqual(kept.body.credential, { type: 'basic', access_key: 'robot', has_secret: true });
    assert.deepEqual((await api('/registries/robot-lit/ping', { method: 'POST' })).body, { ok: true, status: 200, code: null }, 'still authenticates after a PUT without the secret');

    const wrong = await api('/registries/robot-lit', { method: 'PUT', body: JSON.stringify({ name: 'robot-lit', type: 'docker-registry', url: `http://${reg.host}`, credential: { type: 'basic', access_key: 'robot', access_secret: 'not-the-password' } }) });
    assert.equal(wrong.status, 200);
    assert.deepEqual((await api('/registries/robot-lit/ping', { method: 'POST' })).body, { ok: false, status: 401, code: 'UNAUTHORIZED' }, 'a new secret replaces it');

    const none = await api('/registries', json({ name: 'robot-nosecret', type: 'docker-registry', url: `http://${reg.host}`, credential: { type: 'basic', access_key: 'robot' } }));
    assert.equal(none.status, 400);
    assert.match(none.body.error.message, /^credential\.access_secret: is required/);
  });

  it('ping answers {ok, status, code} and never what the registry said', async () => {
    const expected: Array<[RecordingListener, unknown]> = [
      [listener, { ok: false, status: 403, code: 'DENIED' }], // its JSON error code is not the distribution spec's: not shown
      [html, { ok: false, status: 404, code: 'HTTP_404' }],
    ];
    for (const [i, [target, answer]] of expected.entries()) {
      assert.equal((await api('/registries', json({ name: `internal${i}`, type: 'docker-registry', url: target.url }))).status, 201);
      const r = await api(`/registries/internal${i}/ping`, { method: 'POST' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, answer);
      assert.ok(!r.text.includes(MARKER), `remote text echoed: ${r.text}`);
      assert.ok(target.requests.length >= 1, 'the ping reached it');
    }
    const closed = await freePort();
    const cases: Array<[string, string, string]> = [
      ['refused', `http://127.0.0.1:${closed}`, 'CONNECT'],
      ['nodns', 'http://no-such-host.invalid', 'DNS'],
      ['notls', `https://${listener.host}`, 'TLS'],
      ['hangs', hanging.url, 'TIMEOUT'],
    ];
    for (const [name, url, code] of cases) {
      assert.equal((await api('/registries', json({ name, type: 'docker-registry', url }))).status, 201);
      const started = Date.now();
      const r = await api(`/registries/${name}/ping`, { method: 'POST' });
      assert.deepEqual(r.body, { ok: false, status: null, code }, name);
      assert.ok(Date.now() - started < 5000, `${name}: the ping is bounded in time`);
    }
  });

  it('registry URLs at link-local addresses, or with a user and password: 400, nothing stored, the password never echoed', async () => {
    for (const url of ['http://169.254.169.254', 'http://169.254.170.2:80', 'http://[fe80::1]:5000', 'http://[::ffff:169.254.169.254]']) {
      const r = await api('/registries', json({ name: 'meta', type: 'docker-registry', url }));
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      assert.equal(r.body.error.code, 'URL_REFUSED');
      assert.match(r.body.error.message, /^url: .*link-local/);
    }
    assert.equal((await api('/registries/meta')).status, 404);
    const userinfo = await api('/registries', json({ name: 'ui', type: 'docker-registry', url: `http://admin:${PASSWORD}@${reg.host}` }));
    assert.equal(userinfo.status, 400);
    assert.match(userinfo.body.error.message, /^url: must not contain a user name or password/);
    assert.ok(!userinfo.text.includes(PASSWORD));
  });

  it('{secret: NAME} outside the prefix and not allowed: 400; serve has no Secrets Manager for the others', async () => {
    const outside = await api('/registries', json({ name: 's1', type: 'docker-registry', url: `http://${reg.host}`, credential: { username: 'x', password: { secret: 'prod/other-robot' } } }));
    assert.equal(outside.status, 400);
    assert.match(outside.body.error.message, /^credential\.password: \{secret: prod\/other-robot\} is neither under the API's secret prefix harbor-replicator\/test\/api\/ nor listed in api\.allowed_secrets/);
    for (const name of ['team/allowed', 'harbor-replicator/test/api/s1']) {
      const r = await api('/registries', json({ name: 's1', type: 'docker-registry', url: `http://${reg.host}`, credential: { username: 'x', password: { secret: name } } }));
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /needs AWS Secrets Manager/);
    }
    assert.equal((await api('/registries/s1')).status, 404);
  });

  it('a bad cursor on /executions and /executions/{id}/tasks is 400, not 500', async () => {
    const run = await api('/executions', json({ rule: 'noop' }));
    assert.equal(run.status, 201, run.text);
    const forged = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
    for (const cursor of ['%%%', 'bm90IGpzb24', forged([1]), forged({ PK: 'EXEC#other', SK: 'TASK#1' }), forged({ GSI2PK: 'EXECUTIONS' }), forged({ GSI2PK: { S: 'x' } })]) {
      const e = await api(`/executions?cursor=${encodeURIComponent(cursor)}`);
      assert.equal(e.status, 400, `${cursor}: ${e.text}`);
      assert.equal(e.body.error.code, 'INVALID_CURSOR');
      const t = await api(`/executions/${run.body.id}/tasks?cursor=${encodeURIComponent(cursor)}`);
      assert.equal(t.status, 400, `${cursor}: ${t.text}`);
    }
    assert.equal((await api('/executions', json({ rule: 'noop' }))).status, 201);
    const page = await api('/executions?limit=1');
    assert.equal(page.status, 200);
    assert.ok(page.body.next_cursor, 'two executions, pages of one');
    const next = await api(`/executions?limit=1&cursor=${page.body.next_cursor}`);
    assert.equal(next.status, 200, 'a cursor the API gave still works');
    assert.equal(next.body.items.length, 1);
  });

  it('the Bearer scheme is matched case-insensitively ("bearer", "BEARER"); the token is not', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) assert.equal((await api('/executions', { token: `${scheme} ${TOKEN}` })).status, 200, scheme);
    assert.equal((await api('/executions', { token: `bearer ${TOKEN}x` })).status, 401);
    assert.equal((await api('/executions', { token: TOKEN })).status, 401);
  });
});

describe('serve API: no encryption key, api.allowed_registry_hosts excluding 127.0.0.1, entries stored by an older version', () => {
  let dir: string;
  let server: RunningServer;
  let listener: RecordingListener;
  let registry: RecordingListener;
  let realm: RecordingListener;
  const log = capturingLog();
  const api = apiOf(() => server);
  const ENV_VALUE = `env-value-${randomBytes(8).toString('hex')}`;

  before(async () => {
    process.env.HR_SEC_API_TOKEN = TOKEN;
    process.env.HR_SEC_STOLEN = ENV_VALUE;
    listener = await startListener();
    realm = await startListener(); // 127.0.0.1: not allowed
    // An allowed registry whose token realm is not.
    registry = await startListener((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="reg"`, 'content-type': 'application/json' }).end('{}');
    }, '127.0.0.2');
    dir = await mkdtemp(join(tmpdir(), 'hr-serve-sec2-'));
    // Entries as an older version (or someone with the store) wrote them: never through today's API checks.
    const store = await openEmbeddedStore(join(dir, 'state'));
    await store.service.putEntry('registry', 'legacy-env', { name: 'legacy-env', type: 'docker-registry', url: listener.url, credential: { username: 'u', password: { env: 'HR_SEC_STOLEN' } } }, 'create');
    await store.service.putEntry('registry', 'legacy-file', { name: 'legacy-file', type: 'docker-registry', url: listener.url, credential: { username: 'u', password: { file: '/proc/self/environ' } } }, 'create');
    await store.service.putEntry('registry', 'sneaky', { name: 'sneaky', type: 'docker-registry', url: listener.url }, 'create');
    await store.service.putEntry('rule', 'uses-legacy', { name: 'uses-legacy', src_registry: 'legacy-env', dest_registry: 'legacy-env' }, 'create');
    await store.close();
    const config = `
registries: []
api:
  token: {env: HR_SEC_API_TOKEN}
  allowed_registry_hosts: ["127.0.0.2/32", "*.corp.example"]
`;
    server = await startServer({ config: parseConfig(config, 'serve-sec2.yaml'), listen: '127.0.0.1:0', dataDir: join(dir, 'state'), log, pingTimeoutMs: 1500 } as ServerOptions);
  });
  after(async () => {
    await server?.close();
    await Promise.all([listener?.stop(), registry?.stop(), realm?.stop()]);
  });

  it('stored {env} and {file} entries: marked invalid on start with a warning naming them, never resolved, serve runs', async () => {
    const warnings = log.lines.filter((l) => l.level === 'warn').map((l) => JSON.stringify(l.extra));
    assert.ok(warnings.some((w) => w.includes('legacy-env') && w.includes('references of kind env are not allowed')), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes('legacy-file') && w.includes('references of kind file are not allowed')), warnings.join('\n'));
    const got = await api('/registries/legacy-env');
    assert.equal(got.status, 200);
    assert.match(got.body.invalid, /credential\.password: references of kind env/);
    assert.equal(got.body.credential, undefined);
    assert.equal((await api('/rules/uses-legacy')).status, 200, 'the rule using it is still listed');
    for (const name of ['legacy-env', 'legacy-file']) {
      assert.deepEqual((await api(`/registries/${name}/ping`, { method: 'POST' })).body, { ok: false, status: null, code: 'REGISTRY_INVALID' });
    }
    const run = await api('/executions', json({ rule: 'uses-legacy' }));
    assert.equal(run.status, 201);
    let status = 'InProgress';
    for (let i = 0; i < 200 && status === 'InProgress'; i++) {
      status = (await api(`/executions/${run.body.id}`)).body.status;
      if (status === 'InProgress') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 'Failed', 'a run of a rule using it fails');
    assert.equal(listener.connections, 0, 'nothing was sent with (or without) the variable');
    const allText = JSON.stringify(log.lines);
    assert.ok(!allText.includes(ENV_VALUE), 'the variable was never read into anything logged');
    // Replacing it through the API makes it usable again.
    const replaced = await api('/registries/legacy-env', { method: 'PUT', body: JSON.stringify({ name: 'legacy-env', type: 'docker-registry', url: 'http://127.0.0.2:1' }) });
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal((await api('/registries/legacy-env')).body.invalid, undefined);
  });

  it('a literal credential without api.encryption_key: 400 saying so', async () => {
    const r = await api('/registries', json({ name: 'lit', type: 'docker-registry', url: 'http://127.0.0.2:1', credential: { type: 'basic', access_key: 'a', access_secret: 'b' } }));
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^credential\.access_secret: literal secrets through the API need api\.encryption_key/);
  });

  it('a host outside api.allowed_registry_hosts: 400 URL_REFUSED up front (by address and by name), no connection made', async () => {
    for (const url of [listener.url, `http://localhost:${listener.port}`, 'http://127.0.0.3:5000']) {
      const r = await api('/registries', json({ name: 'outside', type: 'docker-registry', url }));
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      assert.equal(r.body.error.code, 'URL_REFUSED');
      assert.match(r.body.error.message, /is not in api\.allowed_registry_hosts/);
    }
    assert.equal(listener.connections, 0);
  });

  it('checked again at connect time: an entry stored past the API check gets URL_REFUSED and no connection', async () => {
    assert.deepEqual((await api('/registries/sneaky/ping', { method: 'POST' })).body, { ok: false, status: null, code: 'URL_REFUSED' });
    assert.equal(listener.connections, 0);
  });

  it("the allow-list holds for the token realm: an allowed registry's realm elsewhere is refused, no connection made", async () => {
    const created = await api('/registries', json({ name: 'allowed', type: 'docker-registry', url: registry.url }));
    assert.equal(created.status, 201, created.text);
    const r = await api('/registries/allowed/ping', { method: 'POST' });
    // This realm is plain HTTP on another host, which the client refuses before its address is
    // even looked at (AUTH_CHALLENGE); the allow-list on any request of the registry's own,
    // the realm's included, is shown at the dispatcher in address-policy.test.
    assert.deepEqual(r.body, { ok: false, status: null, code: 'AUTH_CHALLENGE' });
    assert.ok(registry.requests.length >= 1, 'the registry itself was reached');
    assert.equal(realm.connections, 0, 'the realm was not');
  });
});

describe('the config file: userinfo URLs, api.encryption_key', () => {
  it('config check exits 2 naming the field, without the password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-userinfo-'));
    const file = join(dir, 'replicator.yaml');
    await writeFile(file, 'registries:\n  - {name: hq, type: docker-registry, url: "http://admin:hunter2-pw@127.0.0.1:5000"}\n');
    const r = await runCli(['config', 'check', '--config', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /registries\[0\]\.url: must not contain a user name or password/);
    assert.ok(!r.stderr.includes('hunter2'), r.stderr);
  });

  it('an api.encryption_key that is not 32 bytes of base64: config check and serve exit 2 naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-enckey-'));
    const file = join(dir, 'replicator.yaml');
    await writeFile(file, 'registries: []\napi: {token: {env: HR_T}, encryption_key: {env: HR_K}}\n');
    const env = { HR_T: 'token', HR_K: Buffer.alloc(16, 1).toString('base64') };
    const check = await runCli(['config', 'check', '--config', file], { env });
    assert.equal(check.code, 2);
    assert.match(check.stderr, /api\.encryption_key: must be 32 random bytes in base64/);
    const serve = await runCli(['serve', '--config', file, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'state')], { env });
    assert.equal(serve.code, 2);
    assert.match(serve.stderr, /api\.encryption_key: must be 32 random bytes in base64/);
    assert.ok(!serve.stderr.includes(env.HR_K));
  });
});
