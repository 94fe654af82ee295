// A private CA per registry: `ca: {file}` (or `ca_file`) and `ca: {secret}` add a PEM bundle to
// the trusted roots of that registry only; without it, a certificate from that CA is refused with
// a clear reason. Through the API only `{secret}` is accepted.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseApiRegistryBody } from '../shared/rules/api-registry.js';
import { ApiSecrets } from '../shared/rules/api-secrets.js';
import { ConfigChangeError, ConfigView } from '../shared/rules/config-view.js';
import { parseConfig } from '../shared/rules/load-config.js';
import type { ConfigStore } from '../shared/rules/ports.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { runCli } from './support/cli.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { caSignedCert } from './support/token-issuer.js';

describe('a private CA per registry', () => {
  let src: TestRegistry;
  let tls: TestRegistry;
  let image: Layout;
  let ca: string;
  let dir: string;

  before(async () => {
    const cert = await caSignedCert();
    ca = cert.ca;
    [src, tls] = await Promise.all([startRegistry(), startRegistry({ tls: { certificate: cert.certificate, key: cert.key } })]);
    image = await imageLayout([{ size: 20_000 }]);
    await pushLayout(image, `${src.host}/library/app:1`);
    dir = await mkdtemp(join(tmpdir(), 'hr-ca-'));
  });
  after(async () => {
    await Promise.all([src?.stop(), tls?.stop()]);
  });

  const config = async (name: string, caLine: string) => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      `registries:
  - {name: hq, type: docker-registry, url: "http://${src.host}"}
  - {name: branch, type: docker-registry, url: "https://${tls.url.replace(/^https:\/\//, '')}"${caLine}}
rules:
  - {name: r, src_registry: hq, dest_registry: branch, dest_namespace: ${name}, filters: [{type: name, value: library/app}]}
`,
    );
    return file;
  };

  it('the copy works with ca: {file} (and the older ca_file), and fails with a clear certificate error without it', async () => {
    for (const [name, caLine] of [
      ['cafile', `, ca: {file: "${ca}"}`],
      ['alias', `, ca_file: "${ca}"`],
    ] as const) {
      const r = await runCli(['run', 'r', '--config', await config(name, caLine), '--data-dir', join(dir, `state-${name}`)]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(await manifestDigest(tls.url, `${name}/app`, '1', undefined, ca), image.top.digest);
    }
    const refused = await runCli(['run', 'r', '--config', await config('noca', ''), '--data-dir', join(dir, 'state-noca'), '--json']);
    assert.equal(refused.code, 1);
    // The planner's first look at the destination (a tag HEAD) fails already, with the reason.
    const execution = JSON.parse(refused.stdout) as { status: string; statusText: string };
    assert.equal(execution.status, 'Failed');
    assert.match(execution.statusText, /TLS certificate not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
  });

  it('config: ca is a file or a secret, never both with ca_file; shown by config check', async () => {
    const ok = await runCli(['config', 'check', '--config', await config('shown', `, ca: {file: "${ca}"}`)]);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = (line: string) => {
      try {
        parseConfig(`registries: [{name: a, type: docker-registry, url: "https://a"${line}}]`, 'c.yaml');
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.match(bad(', ca: {env: CA}'), /registries\[0\]\.ca: must be \{file: PATH\} or \{secret: NAME_OR_ARN\}/);
    assert.match(bad(`, ca: {file: a.pem}, ca_file: b.pem`), /registries\[0\]\.ca_file: give the CA once: ca/);
  });

  it('through the API only ca: {secret} is accepted, under the API\'s secret rules; files are refused', async () => {
    assert.deepEqual(parseApiRegistryBody({ name: 'x', type: 'docker-registry', url: 'https://x', ca: { file: '/etc/ssl/private/key.pem' } }), {
      problem: 'ca: files on the server are not allowed through the API; give the CA as ca: {secret: NAME}',
    });
    const entries = new Map<string, Record<string, unknown>>();
    const store: ConfigStore = {
      listEntries: async (kind) => [...entries.entries()].filter(([k]) => k.startsWith(`${kind}/`)).map(([, v]) => v),
      getEntry: async (kind, name) => entries.get(`${kind}/${name}`),
      putEntry: async (kind, name, value) => (entries.set(`${kind}/${name}`, value), true),
      deleteEntry: async (kind, name) => entries.delete(`${kind}/${name}`),
    };
    const reads: string[] = [];
    const view = new ConfigView(parseConfig('registries: []', 'c.yaml'), store, {
      apiSecrets: new ApiSecrets({ prefix: 'harbor-replicator/test/api/', reader: { get: async (name) => (reads.push(name), `PEM of ${name}`) } }),
    });
    await view.refresh();
    await assert.rejects(view.put('registry', { name: 'outside', type: 'docker-registry', url: 'https://x', ca: { secret: 'other/team-ca' } }, 'create'), (err: ConfigChangeError) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /^ca: \{secret: other\/team-ca\} is neither under the API's secret prefix/);
      return true;
    });
    await view.put('registry', { name: 'inside', type: 'docker-registry', url: 'https://x', ca: { secret: 'harbor-replicator/test/api/inside-ca' } }, 'create');
    // The registry's client gets that CA, read through the API's rules.
    const clients = new RegistryClients({ secrets: {}, apiRegistries: view });
    const client = await clients.get(view.loaded.registry('inside'));
    assert.equal(client.options.ca, 'PEM of harbor-replicator/test/api/inside-ca');
    assert.deepEqual(reads, ['harbor-replicator/test/api/inside-ca']);
  });
});
