// What `serve` adds for the console, over HTTP without a browser: the page and its assets with
// their cache headers and the security headers on every answer (the API's too); the read-only
// token (reads everything, every write 403 READ_ONLY, GET /access says which); the dry run of a
// rule (POST /rules/{name}/plan: capped at 200 artifacts with `truncated`); HTTPS with
// --tls-cert/--tls-key; the settings serve refuses.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hono } from 'hono';
import { loadConsoleAssets } from '../functions/console/assets.js';
import { mountConsole } from '../shared/http/console-routes.js';
import { startServer, type RunningServer } from '../functions/serve/server.js';
import { silentLog } from '../shared/observability/telemetry.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { runCli } from './support/cli.js';
import { imageLayout, pushLayout } from './support/fixtures.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { selfSignedCert } from './support/token-issuer.js';

const TOKEN = 'console-serve-write-t0ken';
const READ_TOKEN = 'console-serve-read-t0ken';
const MANIFEST_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

const configText = (registry: string, extra = '') => `
registries:
  - {name: hq, type: docker-registry, url: "http://${registry}"}
  - {name: branch, type: docker-registry, url: "http://${registry}"}
rules:
  - {name: many, src_registry: hq, dest_registry: branch, dest_namespace: copy, filters: [{type: name, value: "many/**"}]}
  - {name: few, src_registry: hq, dest_registry: branch, dest_namespace: copy, filters: [{type: name, value: "few/**"}, {type: tag, value: "v1*"}]}
api: {token: {env: CONSOLE_SERVE_TOKEN}, read_token: {env: CONSOLE_SERVE_READ_TOKEN}}
${extra}`;

describe('serve for the console: page, headers, read-only token, dry run, HTTPS', { timeout: 120_000 }, () => {
  let registry: TestRegistry;
  let server: RunningServer;
  let dataRoot: string;

  const call = async (path: string, init: RequestInit = {}, token = TOKEN) => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text };
  };

  before(async () => {
    registry = await startRegistry();
    await Promise.all([pushLayout(await imageLayout([{ size: 4_000 }]), `${registry.host}/many/app:seed`), pushLayout(await imageLayout([{ size: 3_000 }]), `${registry.host}/few/app:v1.0`)]);
    // 205 tags of one manifest: more than a dry run lists.
    const manifest = await fetch(`http://${registry.host}/v2/many/app/manifests/seed`, { headers: { accept: MANIFEST_TYPES } });
    const type = manifest.headers.get('content-type')!;
    const bytes = Buffer.from(await manifest.arrayBuffer());
    for (let i = 0; i < 205; i += 41) {
      await Promise.all(
        Array.from({ length: 41 }, (_, j) =>
          fetch(`http://${registry.host}/v2/many/app/manifests/t${i + j}`, { method: 'PUT', headers: { 'content-type': type }, body: bytes }).then((r) => assert.equal(r.status, 201)),
        ),
      );
    }
    process.env.CONSOLE_SERVE_TOKEN = TOKEN;
    process.env.CONSOLE_SERVE_READ_TOKEN = READ_TOKEN;
    dataRoot = await mkdtemp(join(tmpdir(), 'hr-console-serve-'));
    server = await startServer({ config: parseConfig(configText(registry.host), 'console-serve.yaml'), listen: '127.0.0.1:0', dataDir: join(dataRoot, 'a'), log: silentLog, graceMs: 1000 });
  });
  after(async () => {
    await server?.close();
    await registry?.stop();
  });

  it('GET / is the page (no-cache); its assets have hashed names, cached a year; nothing inline', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const html = await page.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>|<style|\bon[a-z]+=|style=/i, 'no inline script, style or handler');
    const assets = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(assets.map((a) => a.replace(/-[A-Z0-9]{8}\./, '-HASH.')).sort(), ['assets/app-HASH.js', 'assets/console-HASH.css', 'assets/favicon.svg']);
    let gzipped = 0;
    for (const a of assets) {
      const res = await fetch(`${server.url}/${a}`);
      assert.equal(res.status, 200, a);
      const body = Buffer.from(await res.arrayBuffer());
      if (/-[A-Z0-9]{8}\./.test(a)) assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(res.headers.get('content-type') ?? '', a.endsWith('.js') ? /^text\/javascript/ : a.endsWith('.css') ? /^text\/css/ : /^image\/svg\+xml/);
      assert.doesNotMatch(body.toString(), /https?:\/\/(?!www\.w3\.org)[a-z]/i, `${a}: no third-party origin`);
      gzipped += (await import('node:zlib')).gzipSync(body).length;
    }
    assert.ok(gzipped < 100 * 1024, `the console is ${gzipped} bytes gzipped (under 100 KiB)`);
    assert.equal((await fetch(`${server.url}/assets/nope-ABCDEFGH.js`)).status, 404);
    assert.equal((await fetch(`${server.url}/assets/..%2Fpackage.json`)).status, 404);
  });

  it('every answer carries the CSP (no inline script, frame-ancestors none) and the other security headers', async () => {
    for (const res of [await fetch(`${server.url}/`), await fetch(`${server.url}/healthz`), (await call('/api/v1/rules')) as unknown as { headers: Headers }, (await call('/api/v1/rules', {}, 'wrong')) as unknown as { headers: Headers }]) {
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-|\*|https?:/);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    }
  });

  it('the read-only token reads everything; every write is 403 READ_ONLY; GET /access says which token', async () => {
    assert.deepEqual((await call('/api/v1/access')).body, { access: 'write' });
    assert.deepEqual((await call('/api/v1/access', {}, READ_TOKEN)).body, { access: 'read' });
    assert.equal((await call('/api/v1/access', {}, 'not-a-token')).status, 401);
    for (const path of ['/api/v1/rules', '/api/v1/rules/many', '/api/v1/registries', '/api/v1/executions']) assert.equal((await call(path, {}, READ_TOKEN)).status, 200, path);
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/api/v1/executions', { rule: 'few' }],
      ['POST', '/api/v1/rules/few/plan', {}],
      ['POST', '/api/v1/registries/hq/ping', {}],
      ['POST', '/api/v1/rules', { name: 'x', src_registry: 'hq', dest_registry: 'branch' }],
      ['PUT', '/api/v1/rules/few', {}],
      ['DELETE', '/api/v1/registries/hq', undefined],
      ['POST', '/api/v1/executions/1/stop', {}],
    ];
    for (const [method, path, body] of writes) {
      const res = await call(path, { method, body: body === undefined ? undefined : JSON.stringify(body) }, READ_TOKEN);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error.code, 'READ_ONLY');
    }
    assert.deepEqual((await call('/api/v1/executions', {}, READ_TOKEN)).body.items, [], 'nothing was run');
  });

  it('a dry run: the plan without copying, capped at 200 artifacts with truncated', async () => {
    const few = await call('/api/v1/rules/few/plan', { method: 'POST', body: '{}' });
    assert.equal(few.status, 200, few.text);
    assert.equal(few.body.truncated, false);
    assert.deepEqual(few.body.counts, { items: 1, excluded: 1, errors: 0 }); // many/app: left out by the name filter
    assert.deepEqual(few.body.items.map((i: any) => `${i.source.repository}:${i.source.tags} -> ${i.destination.repository}:${i.destination.tags}`), ['few/app:v1.0 -> copy/app:v1.0']);
    const many = await call('/api/v1/rules/many/plan', { method: 'POST', body: '{}' });
    assert.equal(many.status, 200, many.text);
    assert.equal(many.body.truncated, true);
    assert.equal(many.body.truncatedBy, 'items');
    assert.equal(many.body.itemsLimit, 200);
    assert.equal(many.body.items.length, 200);
    assert.equal((await call('/api/v1/rules/nope/plan', { method: 'POST', body: '{}' })).status, 404);
    // Nothing was recorded or copied.
    assert.deepEqual((await call('/api/v1/executions')).body.items, []);
    assert.equal((await fetch(`http://${registry.host}/v2/copy/app/tags/list`)).status, 404);
  });

  it('--tls-cert/--tls-key: HTTPS, the console and the API over TLS; a wrong pair refused at start', async () => {
    const cert = await selfSignedCert();
    const tlsServer = await startServer({
      config: parseConfig(configText(registry.host), 'console-serve.yaml'),
      listen: '127.0.0.1:0',
      dataDir: join(dataRoot, 'tls'),
      log: silentLog,
      graceMs: 1000,
      tls: { certFile: cert.certificate, keyFile: cert.key },
    });
    try {
      assert.match(tlsServer.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = await readFile(cert.certificate);
      const get = (path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpsRequest(`${tlsServer.url}${path}`, { ca, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        });
      assert.match((await get('/')).body, /<div id="app">/);
      assert.deepEqual(JSON.parse((await get('/api/v1/access')).body), { access: 'write' });
      // Plain HTTP to the TLS port gets no answer.
      await assert.rejects(fetch(`${tlsServer.url.replace('https:', 'http:')}/healthz`));
    } finally {
      await tlsServer.close();
    }
    const other = await selfSignedCert();
    await assert.rejects(
      startServer({ config: parseConfig(configText(registry.host), 'c.yaml'), listen: '127.0.0.1:0', dataDir: join(dataRoot, 'bad'), log: silentLog, tls: { certFile: cert.certificate, keyFile: other.key } }),
      /--tls-cert .* \/ --tls-key .*:/,
    );
    await assert.rejects(
      startServer({ config: parseConfig(configText(registry.host), 'c.yaml'), listen: '127.0.0.1:0', dataDir: join(dataRoot, 'bad2'), log: silentLog, tls: { certFile: join(dataRoot, 'none.pem'), keyFile: cert.key } }),
      /--tls-cert .*none\.pem: cannot be read \(ENOENT\)/,
    );
    const cli = await runCli(['serve', '--tls-cert', cert.certificate]);
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /--tls-cert and --tls-key go together/);
  });

  it('refuses a read_token equal to the token; without built files, / says how to build them', async () => {
    process.env.CONSOLE_SERVE_READ_TOKEN = TOKEN;
    try {
      await assert.rejects(
        startServer({ config: parseConfig(configText(registry.host), 'same.yaml'), listen: '127.0.0.1:0', dataDir: join(dataRoot, 'same'), log: silentLog }),
        /api\.read_token: is the same as api\.token/,
      );
    } finally {
      process.env.CONSOLE_SERVE_READ_TOKEN = READ_TOKEN;
    }
    assert.equal(await loadConsoleAssets(join(dataRoot, 'no-console')), undefined);
    const app = new Hono();
    mountConsole(app, undefined);
    const res = await app.request('/');
    assert.equal(res.status, 404);
    assert.match(JSON.stringify(await res.json()), /CONSOLE_NOT_BUILT.*npm run build/);
  });
});
