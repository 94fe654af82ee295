// Every OCI artifact copies, digests equal: Helm charts, artifacts with an artifactType and the
// empty config, WASM modules, Docker schema 2 images and manifest lists, an index of indexes,
// foreign layers (copied as references, never fetched) and zstd layers; a Docker schema 1
// manifest is refused with MANIFEST_UNSUPPORTED and why. Fixtures are built here and pushed to
// real docker-registry (test/support/artifacts.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  getManifest,
  MT,
  pushArtifact,
  pushHelmChart,
  pushImage,
  pushIndex,
  pushSchema1,
  pushWasm,
  type Pushed,
  type Target,
} from './support/artifacts.js';
import { runCli } from './support/cli.js';
import { blobExists } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const INSECURE = ['--src-tls-verify=false', '--dest-tls-verify=false'];

describe('every OCI artifact copies, digests equal', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let s: Target;
  let d: Target;

  before(async () => {
    // Foreign layers are refused by docker-registry unless their URLs are allowed; schema 1 pushes too.
    [src, dst] = await Promise.all([startRegistry({ allowUrls: true, schema1: true }), startRegistry({ allowUrls: true })]);
    s = { url: src.url };
    d = { url: dst.url };
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  /** Copies `repo:tag` to the destination with the CLI; the destination's manifest bytes must be the source's. */
  const copied = async (repo: string, tag: string, pushed: Pushed) => {
    const r = await runCli(['copy', '--json', ...INSECURE, `${src.host}/${repo}:${tag}`, `${dst.host}/copy/${repo}:${tag}`]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { status: string; digest: string };
    assert.equal(out.status, 'copied');
    assert.equal(out.digest, pushed.digest);
    assert.deepEqual(await getManifest(d, `copy/${repo}`, tag), pushed.bytes, 'bytes unchanged');
    return out;
  };

  it('a Helm chart (application/vnd.cncf.helm.config.v1+json)', async () => {
    const chart = await pushHelmChart(s, 'charts/web', '1.2.3');
    await copied('charts/web', '1.2.3', chart);
    const m = JSON.parse(chart.bytes.toString()) as { config: { mediaType: string; digest: string }; layers: Array<{ digest: string }> };
    assert.equal(m.config.mediaType, MT.HELM_CONFIG);
    assert.ok(await blobExists(dst.url, 'copy/charts/web', m.layers[0]!.digest));
  });

  it('an artifact with an artifactType and the empty config', async () => {
    const a = await pushArtifact(s, 'things/report', 'v1', {
      artifactType: 'application/vnd.example.report.v1+json',
      layers: [{ mediaType: 'application/vnd.example.report.layer.v1+json', data: '{"findings":[]}' }],
      annotations: { 'org.opencontainers.image.title': 'report' },
    });
    await copied('things/report', 'v1', a);
    const m = JSON.parse(a.bytes.toString()) as { config: { mediaType: string; size: number } };
    assert.deepEqual([m.config.mediaType, m.config.size], [MT.OCI_EMPTY, 2]);
  });

  it('a WASM module', async () => {
    const wasm = await pushWasm(s, 'wasm/filter', 'v1');
    await copied('wasm/filter', 'v1', wasm);
  });

  it('a Docker schema 2 image and a Docker manifest list', async () => {
    const amd = await pushImage(s, 'docker/app', 'amd64', { docker: true });
    await copied('docker/app', 'amd64', amd);
    const arm = await pushImage(s, 'docker/app', undefined, { docker: true, platform: { architecture: 'arm64', os: 'linux' } });
    const list = await pushIndex(s, 'docker/app', 'multi', [amd, arm], { docker: true });
    await copied('docker/app', 'multi', list);
    assert.deepEqual(await getManifest(d, 'copy/docker/app', arm.digest), arm.bytes, 'the child by digest');
  });

  it('an index of indexes', async () => {
    const a = await pushImage(s, 'nested/app', undefined, { platform: { architecture: 'amd64', os: 'linux' } });
    const b = await pushImage(s, 'nested/app', undefined, { platform: { architecture: 'arm64', os: 'linux' } });
    const c = await pushImage(s, 'nested/app', undefined, { platform: { architecture: 's390x', os: 'linux' } });
    const inner = await pushIndex(s, 'nested/app', undefined, [a, b]);
    const outer = await pushIndex(s, 'nested/app', 'v1', [inner, c]);
    await copied('nested/app', 'v1', outer);
    for (const m of [inner, a, b, c]) assert.deepEqual(await getManifest(d, 'copy/nested/app', m.digest), m.bytes);
  });

  it('foreign (non-distributable) layers are copied as references, never fetched', async () => {
    const win = await pushImage(s, 'windows/app', 'ltsc', { docker: true, foreign: true });
    assert.equal(await blobExists(src.url, 'windows/app', win.foreignLayer!.digest), false, 'the source does not have it either');
    await copied('windows/app', 'ltsc', win);
    assert.equal(await blobExists(dst.url, 'copy/windows/app', win.foreignLayer!.digest), false, 'not uploaded');
    const m = JSON.parse((await getManifest(d, 'copy/windows/app', 'ltsc'))!.toString()) as { layers: Array<{ urls?: string[] }> };
    assert.deepEqual(m.layers[0]!.urls, win.foreignLayer!.urls);
  });

  it('a zstd layer', async () => {
    const z = await pushImage(s, 'zstd/app', 'v1', { zstd: true });
    await copied('zstd/app', 'v1', z);
    const m = JSON.parse(z.bytes.toString()) as { layers: Array<{ mediaType: string }> };
    assert.equal(m.layers[0]!.mediaType, MT.OCI_LAYER_ZSTD);
  });

  it('a Docker schema 1 manifest is refused with MANIFEST_UNSUPPORTED, saying why', async () => {
    await pushSchema1(s, 'legacy/app', 'old');
    const r = await runCli(['copy', '--json', ...INSECURE, `${src.host}/legacy/app:old`, `${dst.host}/copy/legacy/app:old`]);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as { status: string; error: { code: string; message: string } };
    assert.equal(out.status, 'failed');
    assert.equal(out.error.code, 'MANIFEST_UNSUPPORTED');
    assert.match(out.error.message, /schema 1/i);
    assert.match(r.stderr, /MANIFEST_UNSUPPORTED/);
    assert.equal(await getManifest(d, 'copy/legacy/app', 'old'), undefined);
  });
});
