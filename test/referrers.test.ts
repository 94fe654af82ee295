// Signatures, SBOMs and attestations follow their image, any registry to any registry: cosign's
// tags and the referrers tag schema against real docker-registry, the OCI 1.1 referrers API
// through a stand-in (docker-registry 2.8 has none). Fixtures are built here with the media types
// cosign, notation and the SBOM tools use (test/support/artifacts.ts).
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedStore, type EmbeddedStore } from '../shared/adapters/local/embedded-store.js';
import { runExecution } from '../shared/executions/local-runner.js';
import { planArtifactEvent } from '../shared/executions/planner.js';
import { processTask } from '../shared/executions/worker.js';
import { MemoryQueue, newMemoryQueue } from '../shared/adapters/local/memory-queue.js';
import { HostStates } from '../shared/registry/backoff.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import {
  attach,
  cosignAttest,
  cosignSign,
  deleteBlob,
  getBlob,
  getManifest,
  listTags,
  MT,
  pushArtifact,
  pushBlob,
  pushImage,
  pushIndex,
  schemaTag,
  tagSchemaEntries,
  type Pushed,
  type Target,
} from './support/artifacts.js';
import { runCli, type CliResult } from './support/cli.js';
import { startHarborFake, type HarborFake } from './support/harbor-fake.js';
import { startReferrersRegistry, type ReferrersRegistry } from './support/referrers-registry.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const FAST = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 1000 };
const INSECURE = ['--src-tls-verify=false', '--dest-tls-verify=false'];

describe('referrers follow their subject (tag schema and cosign tags, docker-registry to docker-registry)', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let s: Target;
  let d: Target;
  let embedded: EmbeddedStore;
  /** v1 and what refers to it, at the source. */
  let v1: Pushed;
  let dev: Pushed;
  let sig: Pushed;
  let att: Pushed;
  let sbom: Pushed;
  let sbomSig: Pushed;
  let sbomNotation: Pushed;
  let devSig: Pushed;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    s = { url: src.url };
    d = { url: dst.url };
    v1 = await pushImage(s, 'team/app', 'v1');
    dev = await pushImage(s, 'team/app', 'dev');
    sig = await cosignSign(s, 'team/app', v1);
    att = await cosignAttest(s, 'team/app', v1);
    // docker-registry answers no OCI-Subject: the SBOM is listed in v1's `sha256-<hex>` index.
    sbom = await attach(s, 'team/app', v1, 'sbom');
    assert.equal(sbom.ociSubject, undefined);
    sbomSig = await cosignSign(s, 'team/app', sbom);
    sbomNotation = await attach(s, 'team/app', sbom, 'notation');
    devSig = await cosignSign(s, 'team/app', dev);
    const dir = await mkdtemp(join(tmpdir(), 'hr-referrers-'));
    embedded = await openEmbeddedStore(join(dir, 'state'));
  });
  after(async () => {
    await embedded?.close();
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  const yaml = (rules: string) => `
registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
${rules}`;
  const run = async (rules: string, name: string) => {
    const config = parseConfig(yaml(rules), 'test.yaml');
    const runtime = await ruleRuntime(config, name, new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
    const e = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config, runtime, trigger: 'manual', retryDelayMs: () => 20 });
    return { e, tasks: (await embedded.store.listTasks(e.id, {})).items };
  };
  const rule = (name: string, ns: string, extra = '', repositories = 'team/app') =>
    `  - {name: ${name}, src_registry: src, dest_registry: dst, dest_namespace: ${ns}, dest_namespace_replace_count: 1, filters: [{type: name, value: "${repositories}"}, {type: tag, value: "v*"}]${extra}}`;

  it('a rule with tag filter v* copies v1 with its signature, attestation, SBOM and the SBOM\'s signatures; nothing of dev; foreign referrers at the destination stay', async () => {
    // The destination already lists a referrer of v1 that is not ours.
    const foreign = await attach(d, 'mirror/app', v1, 'custom', { artifactType: 'application/vnd.example.scan.v1+json' });
    const { e, tasks } = await run(rule('tagged', 'mirror'), 'tagged');
    assert.equal(e.status, 'Succeed', JSON.stringify(tasks));
    assert.equal(tasks.length, 1, 'one subject: the referrer tags are no artifacts of their own');
    const [task] = tasks;
    assert.deepEqual(task!.source.tags, ['v1']);
    assert.deepEqual(task!.referrers, { copied: 5, in_sync: 0, failed: 0 });
    assert.deepEqual([...(task!.referrerDigests ?? [])].sort(), [sig, att, sbom, sbomSig, sbomNotation].map((p) => p.digest).sort());

    assert.deepEqual(
      await listTags(d, 'mirror/app'),
      [schemaTag(sbom.digest), `${schemaTag(sbom.digest)}.sig`, schemaTag(v1.digest), `${schemaTag(v1.digest)}.att`, `${schemaTag(v1.digest)}.sig`, 'v1'].sort(),
      'nothing of dev',
    );
    for (const p of [v1, sig, att, sbom, sbomSig, sbomNotation]) {
      assert.deepEqual(await getManifest(d, 'mirror/app', p.digest), p.bytes, `${p.digest}: bytes unchanged`);
    }
    const v1Index = (await tagSchemaEntries(d, 'mirror/app', v1.digest)).map((x) => x.digest);
    assert.deepEqual(v1Index.sort(), [foreign.digest, sbom.digest].sort(), "the destination's own entry kept, ours added");
    const sbomIndex = await tagSchemaEntries(d, 'mirror/app', sbom.digest);
    assert.deepEqual(sbomIndex.map((x) => [x.digest, x.artifactType]), [[sbomNotation.digest, MT.NOTATION]]);
    assert.equal(await getManifest(d, 'mirror/app', `${schemaTag(dev.digest)}.sig`), undefined);
    assert.equal(await getManifest(d, 'mirror/app', devSig.digest), undefined);
  });

  it('a second run: the image and its referrers are in sync, counted so', async () => {
    const { e, tasks } = await run(rule('tagged', 'mirror'), 'tagged');
    assert.equal(e.status, 'Succeed');
    assert.equal(tasks.length, 1);
    assert.deepEqual(tasks[0]!.referrers, { copied: 0, in_sync: 5, failed: 0 });
    assert.match(tasks[0]!.statusText ?? '', /^in sync/);
  });

  it('a signature added later is copied by the next run, though the image is in sync', async () => {
    const notation = await attach(s, 'team/app', v1, 'notation');
    const { tasks } = await run(rule('tagged', 'mirror'), 'tagged');
    assert.deepEqual(tasks[0]!.referrers, { copied: 1, in_sync: 5, failed: 0 });
    assert.ok((await tagSchemaEntries(d, 'mirror/app', v1.digest)).some((x) => x.digest === notation.digest));
  });

  it('referrers: false copies the image alone', async () => {
    const { e, tasks } = await run(rule('bare', 'bare', ', referrers: false'), 'bare');
    assert.equal(e.status, 'Succeed');
    assert.equal(tasks[0]!.referrers, undefined);
    assert.deepEqual(await listTags(d, 'bare/app'), ['v1']);
  });

  it('a referrer that cannot be copied: the task ends in Error with REFERRER_FAILED naming it, the image and the others copied; the next run copies only what is missing', async () => {
    const img = await pushImage(s, 'team/broken', 'v9');
    const brokenSig = await cosignSign(s, 'team/broken', img);
    const fine = await attach(s, 'team/broken', img, 'sbom');
    // The signature's payload is gone from the source (a blob GET answers 404).
    const layer = (JSON.parse(brokenSig.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const payload = await getBlob(s, 'team/broken', layer);
    await deleteBlob(s, 'team/broken', layer);
    const first = await run(rule('broken', 'fix', '', 'team/broken'), 'broken');
    assert.equal(first.e.status, 'Failed');
    const [t] = first.tasks;
    assert.equal(t!.status, 'Error', JSON.stringify(t));
    assert.equal(t!.error?.code, 'REFERRER_FAILED');
    assert.match(t!.statusText ?? '', new RegExp(`${schemaTag(img.digest)}\\.sig`), 'names it');
    assert.deepEqual(t!.referrers, { copied: 1, in_sync: 0, failed: 1 });
    assert.deepEqual(t!.referrerDigests, [fine.digest], 'what it did copy is recorded');
    assert.deepEqual(await getManifest(d, 'fix/broken', 'v9'), img.bytes, 'the subject stays copied');
    assert.deepEqual(await getManifest(d, 'fix/broken', fine.digest), fine.bytes);

    await pushBlob(s, 'team/broken', payload, MT.COSIGN_SIMPLESIGNING);
    const second = await run(rule('broken', 'fix', '', 'team/broken'), 'broken');
    assert.equal(second.e.status, 'Succeed');
    assert.deepEqual(second.tasks[0]!.referrers, { copied: 1, in_sync: 1, failed: 0 });
    assert.deepEqual(await getManifest(d, 'fix/broken', `${schemaTag(img.digest)}.sig`), brokenSig.bytes);
  });

  it('replicate_deletion: deleting the subject deletes at the destination only the referrers the replicator copied there, and their index entries; foreign ones stay', async () => {
    const img = await pushImage(s, 'team/gone', 'v3');
    const mySig = await cosignSign(s, 'team/gone', img);
    const mySbom = await attach(s, 'team/gone', img, 'sbom');
    const mySbomSig = await attach(s, 'team/gone', mySbom, 'notation');
    // At the destination, before the copy: someone else's scan result of the same image.
    const foreign = await attach(d, 'gone/gone', img, 'custom');
    const rules = rule('del', 'gone', ', replicate_deletion: true, trigger: {type: event_based}', 'team/gone');
    const copied = await run(rules, 'del');
    assert.equal(copied.e.status, 'Succeed', JSON.stringify(copied.tasks));
    assert.deepEqual(copied.tasks[0]!.referrers, { copied: 3, in_sync: 0, failed: 0 });

    const config = parseConfig(yaml(rules), 'test.yaml');
    const runtime = await ruleRuntime(config, 'del', new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
    const planned = planArtifactEvent(runtime.rule, { operation: 'deletion', repository: 'team/gone', digest: img.digest, tags: ['v3'] }, {
      source: 'src',
      destination: 'dst',
      destinationType: 'docker-registry',
    });
    assert.ok('task' in planned, JSON.stringify(planned));
    const e = await embedded.store.createExecution({ rule: 'del', trigger: 'event_based' });
    await embedded.store.addTasks(e.id, 1, [planned.task]);
    await embedded.store.finishPlanning(e.id, 1);
    const queue = new MemoryQueue<{ executionId: string; taskId: number }>();
    await queue.send([{ executionId: e.id, taskId: 1 }]);
    for (const msg of await queue.receive(1, 0)) await processTask(msg, { store: embedded.store, taskQueue: queue, runtime: async () => runtime });
    const [task] = (await embedded.store.listTasks(e.id, {})).items;
    assert.equal(task!.status, 'Success', JSON.stringify(task));
    assert.equal(task!.statusText, "deleted (and 3 referrer(s) the replicator had copied)");

    assert.equal(await getManifest(d, 'gone/gone', img.digest), undefined, 'the subject deleted');
    for (const p of [mySig, mySbom, mySbomSig]) assert.equal(await getManifest(d, 'gone/gone', p.digest), undefined, `${p.digest}: ours, deleted`);
    assert.deepEqual(await getManifest(d, 'gone/gone', foreign.digest), foreign.bytes, 'the foreign referrer stays');
    assert.deepEqual((await tagSchemaEntries(d, 'gone/gone', img.digest)).map((x) => x.digest), [foreign.digest], 'its index entry too');
    assert.equal(await getManifest(d, 'gone/gone', schemaTag(mySbom.digest)), undefined, "the SBOM's index, ours alone, is gone");
    assert.deepEqual(await listTags(d, 'gone/gone'), [schemaTag(img.digest)]);
    assert.deepEqual(await embedded.store.recordedReferrers({ host: dst.host, repository: 'gone/gone', subject: img.digest }), [], 'the record forgotten');
  });

  describe('copy', () => {
    const json = (r: CliResult) => JSON.parse(r.stdout.trim()) as Record<string, unknown>;

    it('copy of one image brings its referrers; --json carries their counts', async () => {
      const r = await runCli(['copy', '--json', ...INSECURE, `${src.host}/team/app:v1`, `${dst.host}/copied/app:v1`]);
      assert.equal(r.code, 0, r.stderr);
      const out = json(r);
      assert.equal(out.status, 'copied');
      // The five of the rule's run, and the notation signature added since.
      assert.deepEqual(out.referrers, { copied: 6, in_sync: 0, failed: 0 });
      assert.deepEqual(
        await listTags(d, 'copied/app'),
        [schemaTag(sbom.digest), `${schemaTag(sbom.digest)}.sig`, schemaTag(v1.digest), `${schemaTag(v1.digest)}.att`, `${schemaTag(v1.digest)}.sig`, 'v1'].sort(),
      );
      const again = json(await runCli(['copy', '--json', ...INSECURE, `${src.host}/team/app:v1`, `${dst.host}/copied/app:v1`]));
      assert.equal(again.status, 'in_sync');
      assert.deepEqual(again.referrers, { copied: 0, in_sync: 6, failed: 0 });
    });

    it('--dry-run lists each referrer under its subject with its artifactType, and copies nothing', async () => {
      const r = await runCli(['copy', '--dry-run', ...INSECURE, `${src.host}/team/app:v1`, `${dst.host}/dry/app:v1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^would copy .* ${v1.digest}`, 'm'));
      assert.match(r.stdout, new RegExp(`referrers of ${v1.digest}:`));
      assert.match(r.stdout, new RegExp(`^    ${sbom.digest} ${MT.SPDX.replace(/[+.]/g, '\\$&')} \\[tag-schema\\] would copy$`, 'm'));
      assert.match(r.stdout, new RegExp(`^      ${sbomNotation.digest} ${MT.NOTATION.replace(/[+.]/g, '\\$&')} \\[tag-schema\\] would copy$`, 'm'), 'the SBOM\'s signature under the SBOM');
      assert.match(r.stdout, new RegExp(`^    ${sig.digest} .* tag ${schemaTag(v1.digest)}\\.sig \\[tag\\] would copy$`, 'm'));
      assert.deepEqual(await listTags(d, 'dry/app'), []);
      const j = json(await runCli(['copy', '--dry-run', '--json', ...INSECURE, `${src.host}/team/app:v1`, `${dst.host}/dry/app:v1`]));
      assert.equal(j.status, 'dry_run');
      const tree = j.referrers as Array<{ subject: string; referrers: Array<{ digest: string; artifactType?: string; referrers: unknown[] }> }>;
      assert.equal(tree[0]!.subject, v1.digest);
      assert.equal(tree[0]!.referrers.find((x) => x.digest === sbom.digest)?.artifactType, MT.SPDX);
    });

    it('--no-referrers copies the image alone', async () => {
      const r = await runCli(['copy', '--json', '--no-referrers', ...INSECURE, `${src.host}/team/app:v1`, `${dst.host}/alone/app:v1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(json(r).referrers, undefined);
      assert.deepEqual(await listTags(d, 'alone/app'), ['v1']);
    });
  });
});

describe('referrers through the OCI 1.1 referrers API (a stand-in in front of docker-registry)', () => {
  let srcBack: TestRegistry;
  let dstBack: TestRegistry;
  let apiBack: TestRegistry;
  /** The source, serving the referrers API, two entries a page. */
  let src: ReferrersRegistry;
  /** A destination without the API (counted: probed once). */
  let plain: ReferrersRegistry;
  /** A destination with the API: it indexes referrers itself. */
  let withApi: ReferrersRegistry;
  let s: Target;
  let amd: Pushed;
  let arm: Pushed;
  let multi: Pushed;
  const refs: Record<string, Pushed> = {};

  before(async () => {
    [srcBack, dstBack, apiBack] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    [src, plain, withApi] = await Promise.all([
      startReferrersRegistry(srcBack.host, { pageSize: 2 }),
      startReferrersRegistry(dstBack.host, { api: false }),
      startReferrersRegistry(apiBack.host),
    ]);
    s = { url: src.url };
    amd = await pushImage(s, 'lib/multi', undefined, { platform: { architecture: 'amd64', os: 'linux' } });
    arm = await pushImage(s, 'lib/multi', undefined, { platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } });
    multi = await pushIndex(s, 'lib/multi', 'v2', [amd, arm]);
    // Each child signed with notation; the index attested, scanned and given an SBOM that is signed itself.
    refs.amdSig = await attach(s, 'lib/multi', amd, 'notation');
    refs.armSig = await attach(s, 'lib/multi', arm, 'notation');
    refs.provenance = await attach(s, 'lib/multi', multi, 'in-toto');
    refs.scan = await attach(s, 'lib/multi', multi, 'custom');
    refs.sbom = await attach(s, 'lib/multi', multi, 'sbom');
    refs.sbomSig = await attach(s, 'lib/multi', refs.sbom!, 'notation');
    assert.equal(refs.sbom!.ociSubject, multi.digest, 'the stand-in indexes referrers: no tag schema at the source');
    assert.deepEqual(await listTags(s, 'lib/multi'), ['v2']);
  });
  after(async () => {
    await Promise.all([src?.stop(), plain?.stop(), withApi?.stop()]);
    await Promise.all([srcBack?.stop(), dstBack?.stop(), apiBack?.stop()]);
  });

  it('an index whose children have their own signatures, to a registry without the API: the tag schema is written there; each subject asked once, pages followed', async () => {
    const r = await runCli(['copy', '--json', ...INSECURE, `${src.host}/lib/multi:v2`, `${plain.host}/mirror/multi:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { referrers: unknown }).referrers, { copied: 6, in_sync: 0, failed: 0 });
    const d = { url: plain.url };
    const entries = async (subject: Pushed) => (await tagSchemaEntries(d, 'mirror/multi', subject.digest)).map((x) => x.digest).sort();
    assert.deepEqual(await entries(amd), [refs.amdSig!.digest]);
    assert.deepEqual(await entries(arm), [refs.armSig!.digest]);
    assert.deepEqual(await entries(multi), [refs.provenance!.digest, refs.scan!.digest, refs.sbom!.digest].sort());
    assert.deepEqual(await entries(refs.sbom!), [refs.sbomSig!.digest]);
    for (const p of Object.values(refs)) assert.deepEqual(await getManifest(d, 'mirror/multi', p.digest), p.bytes, 'bytes unchanged');
    // Every subject's referrers asked once (the index's in two pages of two); the destination's API probed once.
    for (const subject of [multi, amd, arm, ...Object.values(refs)]) {
      assert.equal(src.count(new RegExp(`/referrers/${subject.digest}$`), 'GET'), 1, subject.digest);
    }
    assert.equal(src.count(new RegExp(`/referrers/${multi.digest}\\?last=2`), 'GET'), 1, 'the next page followed');
    assert.equal(plain.count(/\/referrers\//), 0, "no OCI-Subject in the answers to the pushes: the destination's tag schema, without asking its API");
  });

  it('to a registry with the API: it indexes the referrers itself (OCI-Subject), no tag schema written', async () => {
    const r = await runCli(['copy', '--json', ...INSECURE, `${src.host}/lib/multi:v2`, `${withApi.host}/mirror/multi:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { referrers: unknown }).referrers, { copied: 6, in_sync: 0, failed: 0 });
    assert.deepEqual(await listTags({ url: withApi.url }, 'mirror/multi'), ['v2']);
    assert.deepEqual(
      (withApi.referrers.get(`mirror/multi@${multi.digest}`) ?? []).map((x) => x.digest).sort(),
      [refs.provenance!.digest, refs.scan!.digest, refs.sbom!.digest].sort(),
    );
  });

  it('from a registry without the API (its tag schema, probed once for nine subjects) to one with it', async () => {
    const probes = plain.count(/\/referrers\//);
    const r = await runCli(['copy', '--json', ...INSECURE, `${plain.host}/mirror/multi:v2`, `${withApi.host}/back/multi:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { referrers: unknown }).referrers, { copied: 6, in_sync: 0, failed: 0 });
    assert.equal(plain.count(/\/referrers\//) - probes, 1, 'the API asked once for the registry, then the tag schema');
    assert.deepEqual((withApi.referrers.get(`back/multi@${amd.digest}`) ?? []).map((x) => x.digest), [refs.amdSig!.digest]);
    assert.deepEqual(await listTags({ url: withApi.url }, 'back/multi'), ['v2'], 'no tag schema where the API is');
  });

  it('--dry-run: the referrers API answers the artifact types', async () => {
    const r = await runCli(['copy', '--dry-run', ...INSECURE, `${src.host}/lib/multi:v2`, `${plain.host}/dry/multi:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`referrers of ${amd.digest}:\\n    ${refs.amdSig!.digest} application/vnd\\.cncf\\.notary\\.signature \\[referrers-api\\] would copy`));
    assert.match(r.stdout, new RegExp(`    ${refs.provenance!.digest} application/vnd\\.in-toto\\+json \\[referrers-api\\] would copy`));
  });
});

describe("a Harbor source: its accessories (with_accessory=true) follow the artifact", () => {
  let back: TestRegistry;
  let dst: TestRegistry;
  let harbor: HarborFake;
  let embedded: EmbeddedStore;

  before(async () => {
    [back, dst] = await Promise.all([startRegistry(), startRegistry()]);
    harbor = await startHarborFake(back, { user: 'admin', password: 'Harbor12345', projects: ['proj'] });
    embedded = await openEmbeddedStore(join(await mkdtemp(join(tmpdir(), 'hr-referrers-harbor-')), 'state'));
    process.env.HR_TEST_HARBOR_PASSWORD = 'Harbor12345';
  });
  after(async () => {
    await embedded?.close();
    await harbor?.stop();
    await Promise.all([back?.stop(), dst?.stop()]);
  });

  it("a cosign signature under its tag and a notation signature known only to Harbor's API are copied; a referrer tag is never a subject", async () => {
    const s = { url: back.url };
    const v1 = await pushImage(s, 'proj/app', 'v1');
    const sig = await cosignSign(s, 'proj/app', v1);
    // Pushed with its subject by digest, listed nowhere but in Harbor's accessories.
    const notation = await pushArtifact(s, 'proj/app', undefined, { artifactType: MT.NOTATION, layers: [{ mediaType: MT.JOSE, data: '{"payload":"x"}' }], subject: v1 });
    harbor.accessories.set(v1.digest, [
      { digest: sig.digest, type: 'signature.cosign' },
      { digest: notation.digest, type: 'signature.notation' },
    ]);
    const config = parseConfig(
      `registries:
  - {name: hb, type: harbor, url: "${harbor.url}", credential: {username: admin, password: {env: HR_TEST_HARBOR_PASSWORD}}}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: from-harbor, src_registry: hb, dest_registry: dst, dest_namespace: hb, filters: [{type: name, value: "proj/**"}, {type: tag, value: "v*"}]}
`,
      'test.yaml',
    );
    const runtime = await ruleRuntime(config, 'from-harbor', new RegistryClients({ secrets: {}, hosts: new HostStates(FAST) }), { secrets: {} });
    const e = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config, runtime, trigger: 'manual', retryDelayMs: () => 20 });
    const tasks = (await embedded.store.listTasks(e.id, {})).items;
    assert.equal(e.status, 'Succeed', JSON.stringify(tasks));
    assert.equal(tasks.length, 1, 'the signature is no artifact of its own');
    assert.deepEqual(tasks[0]!.referrers, { copied: 2, in_sync: 0, failed: 0 });
    const d = { url: dst.url };
    assert.deepEqual(await getManifest(d, 'hb/app', `${schemaTag(v1.digest)}.sig`), sig.bytes, 'the cosign signature under its tag');
    assert.deepEqual(await getManifest(d, 'hb/app', notation.digest), notation.bytes, 'the notation signature by digest');
    assert.deepEqual((await tagSchemaEntries(d, 'hb/app', v1.digest)).map((x) => [x.digest, x.artifactType]), [[notation.digest, MT.NOTATION]], 'and listed in the tag schema there');

    // A webhook for a referrer tag plans nothing: it follows its subject.
    const planned = planArtifactEvent(runtime.rule, { operation: 'copy', repository: 'proj/app', digest: sig.digest, tags: [`${schemaTag(v1.digest)}.sig`] }, { source: 'hb', destination: 'dst', destinationType: 'docker-registry' });
    assert.ok('excluded' in planned && /follows its subject/.test(planned.excluded), JSON.stringify(planned));
  });
});
