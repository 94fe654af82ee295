// `npm run bench` (second part): `harbor-replicator run` of a rule against `skopeo sync`, in the
// same run. First copies of 50 tags (2 x 256 KiB layers each) to a fresh destination; re-runs
// with everything in sync at 50 and 1,000 tags; then planning 10,000 tags (seconds, peak RSS).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { request } from 'undici';
import { imageLayout, pushLayout } from '../test/support/fixtures.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
// BENCH_CLI: another build's bin.mjs (A/B comparisons).
const CLI = process.env.BENCH_CLI ?? fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const SKOPEO_CACHES = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', join(process.env.HOME ?? '/root', '.local/share/containers/cache/blob-info-cache-v1.boltdb')];
const KiB = 1024;

interface Sample {
  seconds: number;
  rssMiB: number;
}

async function measure(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', 'HR_MAXRSS_KB=%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`);
  return { seconds, rssMiB: Number(/HR_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0) / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Tags `count` distinct manifests that share one config and one layer (PUTs of manifests only). */
async function manyTags(reg: TestRegistry, repo: string, count: number): Promise<void> {
  const layout = await imageLayout([{ size: 4 * KiB }]);
  await pushLayout(layout, `${reg.host}/${repo}:base`);
  const manifest = JSON.parse(readFileSync(join(layout.dir, 'blobs/sha256', layout.top.digest.slice(7)), 'utf8')) as Record<string, unknown>;
  const limit = pLimit(16);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const body = JSON.stringify({ ...manifest, annotations: { 'bench.index': String(i) } });
        const res = await request(`${reg.url}/v2/${repo}/manifests/t${String(i).padStart(5, '0')}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
          body,
        });
        await res.body.dump();
        if (res.statusCode !== 201) throw new Error(`PUT manifest ${i}: ${res.statusCode}`);
      }),
    ),
  );
  await rm(layout.dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hr-runbench-'));
  const src = await startRegistry();
  let dst: TestRegistry | undefined;
  const lines: string[] = [];
  try {
    process.stderr.write('bench: pushing 50 tags x 2 x 256 KiB with skopeo\n');
    for (let i = 0; i < 50; i++) {
      const layout = await imageLayout([{ size: 256 * KiB }, { size: 256 * KiB }]);
      await pushLayout(layout, `${src.host}/bench/sync:v${String(i).padStart(2, '0')}`);
      await rm(layout.dir, { recursive: true, force: true });
    }
    process.stderr.write('bench: tagging 1,000 and 10,000 manifests\n');
    await manyTags(src, 'bench/many', 1000);
    await manyTags(src, 'bench/huge', 10_000);

    const config = async (dest: TestRegistry, name: string, repo: string) => {
      const file = join(work, `${name}.yaml`);
      await writeFile(
        file,
        `registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: dst, type: docker-registry, url: "http://${dest.host}"}
rules:
  - {name: ${name}, src_registry: src, dest_registry: dst, dest_namespace: mirror, concurrency: 16, filters: [{type: name, value: "${repo}"}]}
`,
      );
      return file;
    };
    const ours = async (dest: TestRegistry, name: string, repo: string, dataDir: string, extra: string[] = []) =>
      measure(process.execPath, [CLI, 'run', name, '--config', await config(dest, name, repo), '--data-dir', dataDir, '--quiet', ...extra], {
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      });
    const skopeo = (dest: TestRegistry, repo: string) =>
      measure('skopeo', ['sync', '--all', '--preserve-digests', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${src.host}/${repo}`, `${dest.host}/mirror`]);
    const fresh = async () => {
      await dst?.stop();
      for (const f of SKOPEO_CACHES) await rm(f, { force: true });
      dst = await startRegistry();
      return dst;
    };

    // 1. First copy of 50 tags, fresh destination (and data dir) each run; alternate.
    const first = { ours: [] as Sample[], skopeo: [] as Sample[] };
    for (let i = 0; i < RUNS; i++) {
      first.ours.push(await ours(await fresh(), 'sync50', 'bench/sync', join(work, `first-${i}`)));
      first.skopeo.push(await skopeo(await fresh(), 'bench/sync'));
      process.stderr.write(`bench: first copy run ${i + 1}/${RUNS}: ours ${first.ours.at(-1)!.seconds.toFixed(2)} s, skopeo ${first.skopeo.at(-1)!.seconds.toFixed(2)} s\n`);
    }

    // 2. In sync at 50 and 1,000 tags: both fill a destination once, then re-run there.
    const inSync = async (repo: string, name: string) => {
      const oursDst = await fresh();
      const dataDir = join(work, `sync-${name}`);
      await ours(oursDst, name, repo, dataDir);
      const o: Sample[] = [];
      for (let i = 0; i < RUNS; i++) o.push(await ours(oursDst, name, repo, dataDir));
      const skDst = await fresh();
      await skopeo(skDst, repo);
      const k: Sample[] = [];
      for (let i = 0; i < RUNS; i++) k.push(await skopeo(skDst, repo));
      process.stderr.write(`bench: in-sync ${name}: ours ${median(o.map((s) => s.seconds)).toFixed(2)} s, skopeo ${median(k.map((s) => s.seconds)).toFixed(2)} s\n`);
      return { ours: o, skopeo: k };
    };
    const sync50 = await inSync('bench/sync', 'sync50');
    const sync1000 = await inSync('bench/many', 'sync1000');

    // 3. Planning 10,000 tags: the plan alone (--dry-run), and a run where all are in sync.
    const hugeDst = await fresh();
    const planOnly = await measure(process.execPath, [CLI, 'run', 'huge', '--config', await config(hugeDst, 'huge', 'bench/huge'), '--dry-run'], {});
    const hugeData = join(work, 'huge');
    const hugeFirst = await ours(hugeDst, 'huge', 'bench/huge', hugeData);
    const hugeInSync = await ours(hugeDst, 'huge', 'bench/huge', hugeData);

    const row = (name: string, o: Sample[], k: Sample[], target: string, ok: (r: number) => boolean) => {
      const om = median(o.map((s) => s.seconds));
      const km = median(k.map((s) => s.seconds));
      const ratio = om / km;
      lines.push(
        `${name.padEnd(28)} ${om.toFixed(3).padStart(7)} ${km.toFixed(3).padStart(9)} ${ratio.toFixed(3).padStart(6)}  ${median(o.map((s) => s.rssMiB)).toFixed(0).padStart(6)} ${median(k.map((s) => s.rssMiB)).toFixed(0).padStart(8)}   ${ok(ratio) ? 'met ' : 'MISS'} ${target}`,
      );
    };
    lines.push(`harbor-replicator run (rule concurrency 16) vs skopeo ${skopeoVersion()} sync --all --preserve-digests; medians of ${RUNS} runs`);
    lines.push('case                          ours s  skopeo s  ratio  RSS MiB  skopeo    target');
    row('first copy, 50 tags', first.ours, first.skopeo, 'ratio <= 0.35', (r) => r <= 0.35);
    row('in sync, 50 tags', sync50.ours, sync50.skopeo, 'ratio <= 1.0', (r) => r <= 1.0);
    row('in sync, 1,000 tags', sync1000.ours, sync1000.skopeo, 'ratio <= 0.3', (r) => r <= 0.3);
    lines.push(`10,000 tags: plan (--dry-run) ${planOnly.seconds.toFixed(2)} s, peak RSS ${planOnly.rssMiB.toFixed(0)} MiB`);
    lines.push(`10,000 tags: first run (manifests only, blobs shared) ${hugeFirst.seconds.toFixed(2)} s, peak RSS ${hugeFirst.rssMiB.toFixed(0)} MiB`);
    lines.push(`10,000 tags: in-sync run (10,000 tasks recorded) ${hugeInSync.seconds.toFixed(2)} s, peak RSS ${hugeInSync.rssMiB.toFixed(0)} MiB`);
  } finally {
    await Promise.all([src.stop(), dst?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function skopeoVersion(): string {
  return /version (\S+)/.exec(execFileSync('skopeo', ['--version'], { encoding: 'utf8' }))?.[1] ?? '';
}

if (!existsSync('/usr/bin/time')) throw new Error('the benchmark measures peak RSS with GNU time (/usr/bin/time): apt-get install time');
await main();
