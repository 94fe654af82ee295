// `npm run bench` (second part): `harbor-replicator run` of a rule against `skopeo sync --all`, in
// the same run, between two local docker-registry instances:
//   - a 50-tag rule (2 x 256 KiB layers each): first copy, then the in-sync re-run;
//   - a 1,000-tag rule (one repository: 20 images, each under 50 tags pushed by manifest PUT):
//     first copy, then the in-sync re-run;
//   - planning (--dry-run) 1,000 and 10,000 tags: time and peak RSS (memory flat between them);
//   - start-up: `--help` and a 1-tag in-sync run against `node -e 0`.
// Each run starts on a fresh destination (and data dir; skopeo's blob cache deleted), runs the
// first copy, then the re-run on that destination; ours and skopeo's runs alternate. Every
// measured run is checked: each destination tag has its source tag's digest. Wall time, our CPU
// (user + sys), the registries' CPU (/proc/<pid>/stat) and the CPU floor, (our CPU + registries')
// / cores, are medians of RUNS (default 3). "others" is the CPU the rest of the machine used during
// the run: on a shared machine it is what puts a wall above its floor without being anyone's request.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { request } from 'undici';
import { imageLayout, pushLayout } from '../test/support/fixtures.js';
import { ACCEPT } from '../test/support/inspect.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { CORES, measure, median, medians, skopeoVersion, type Sample } from './measure.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
// BENCH_CLI: another build's bin.mjs (A/B comparisons).
const CLI = process.env.BENCH_CLI ?? fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const CENSUS = new URL('./request-census.js', import.meta.url).href;
const SKOPEO_CACHES = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', join(process.env.HOME ?? '/root', '.local/share/containers/cache/blob-info-cache-v1.boltdb')];
const KiB = 1024;
const started = performance.now();
const note = (text: string) => process.stderr.write(`bench [${((performance.now() - started) / 1000).toFixed(0)} s]: ${text}\n`);

/** PUTs a manifest's bytes under a tag (a tag pushed by manifest PUT, as Harbor users retag). */
async function putManifest(reg: TestRegistry, repo: string, tag: string, bytes: Buffer | string, mediaType: string): Promise<void> {
  const res = await request(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes });
  await res.body.dump();
  if (res.statusCode !== 201) throw new Error(`PUT manifest ${repo}:${tag}: ${res.statusCode}`);
}

/** `images` images of one 16 KiB layer each, every one under `tagsPerImage` tags of `repo`. */
async function imagesUnderTags(reg: TestRegistry, repo: string, images: number, tagsPerImage: number): Promise<void> {
  const limit = pLimit(16);
  for (let i = 0; i < images; i++) {
    const layout = await imageLayout([{ size: 16 * KiB }]);
    const name = (j: number) => `i${String(i).padStart(2, '0')}-${String(j).padStart(2, '0')}`;
    await pushLayout(layout, `${reg.host}/${repo}:${name(0)}`);
    const bytes = await readFile(join(layout.dir, 'blobs/sha256', layout.top.digest.slice(7)));
    await Promise.all(Array.from({ length: tagsPerImage - 1 }, (_, j) => limit(() => putManifest(reg, repo, name(j + 1), bytes, layout.top.mediaType))));
    await rm(layout.dir, { recursive: true, force: true });
  }
}

/** Tags `count` distinct manifests that share one config and one layer (PUTs of manifests only). */
async function manyTags(reg: TestRegistry, repo: string, count: number): Promise<void> {
  const layout = await imageLayout([{ size: 4 * KiB }]);
  await pushLayout(layout, `${reg.host}/${repo}:base`);
  const manifest = JSON.parse(await readFile(join(layout.dir, 'blobs/sha256', layout.top.digest.slice(7)), 'utf8')) as Record<string, unknown>;
  const limit = pLimit(16);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(() => putManifest(reg, repo, `t${String(i).padStart(5, '0')}`, JSON.stringify({ ...manifest, annotations: { 'bench.index': String(i) } }), 'application/vnd.oci.image.manifest.v1+json')),
    ),
  );
  await rm(layout.dir, { recursive: true, force: true });
}

/** Every tag of `srcRepo` at `src`, with its digest. */
async function digests(reg: TestRegistry, repo: string): Promise<Map<string, string | undefined>> {
  const res = await request(`${reg.url}/v2/${repo}/tags/list`);
  const tags = res.statusCode === 200 ? (((await res.body.json()) as { tags?: string[] }).tags ?? []) : (await res.body.dump(), []);
  const limit = pLimit(16);
  const out = new Map<string, string | undefined>();
  await Promise.all(
    tags.map((tag) =>
      limit(async () => {
        const head = await request(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT }, reset: false });
        await head.body.dump();
        out.set(tag, head.statusCode === 200 ? String(head.headers['docker-content-digest']) : undefined);
      }),
    ),
  );
  return out;
}

/** Throws unless every source tag is at the destination with the same digest. */
function checkCopied(expected: Map<string, string | undefined>, got: Map<string, string | undefined>, what: string): void {
  let wrong = 0;
  for (const [tag, digest] of expected) if (got.get(tag) !== digest) wrong += 1;
  if (wrong > 0 || expected.size === 0) throw new Error(`${what}: ${wrong} of ${expected.size} tags missing or at another digest at the destination`);
}

interface Pair {
  first: Sample[];
  inSync: Sample[];
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hr-runbench-'));
  const src = await startRegistry();
  let dst: TestRegistry | undefined;
  const out: string[] = [];
  try {
    note('pushing 50 tags x 2 x 256 KiB with skopeo');
    for (let i = 0; i < 50; i++) {
      const layout = await imageLayout([{ size: 256 * KiB }, { size: 256 * KiB }]);
      await pushLayout(layout, `${src.host}/bench/sync:v${String(i).padStart(2, '0')}`);
      await rm(layout.dir, { recursive: true, force: true });
    }
    note('pushing 20 images under 50 tags each (manifest PUTs), and 10,000 tags');
    await imagesUnderTags(src, 'bench/many', 20, 50);
    await manyTags(src, 'bench/huge', 10_000);
    const one = await imageLayout([{ size: 4 * KiB }]);
    await pushLayout(one, `${src.host}/bench/one:1`);
    await rm(one.dir, { recursive: true, force: true });
    const expected = { sync: await digests(src, 'bench/sync'), many: await digests(src, 'bench/many') };

    const config = async (dest: TestRegistry, name: string, repo: string, concurrency = 16) => {
      const file = join(work, `${name}.yaml`);
      await writeFile(
        file,
        `registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: dst, type: docker-registry, url: "http://${dest.host}"}
rules:
  - {name: ${name}, src_registry: src, dest_registry: dst, dest_namespace: mirror, concurrency: ${concurrency}, filters: [{type: name, value: "${repo}"}]}
`,
      );
      return file;
    };
    const watch = (d: TestRegistry) => [src.process.pid, d.process.pid];
    const ours = async (dest: TestRegistry, name: string, repo: string, dataDir: string, extra: { nodeArgs?: string[]; env?: Record<string, string> } = {}) =>
      measure(process.execPath, [...(extra.nodeArgs ?? []), CLI, 'run', name, '--config', await config(dest, name, repo), '--data-dir', dataDir, '--quiet'], {
        watch: watch(dest),
        env: extra.env ?? {},
      });
    const skopeo = (dest: TestRegistry, repo: string) =>
      measure('skopeo', ['sync', '--all', '--preserve-digests', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${src.host}/${repo}`, `${dest.host}/mirror`], {
        watch: watch(dest),
      });
    const fresh = async () => {
      await dst?.stop();
      for (const f of SKOPEO_CACHES) await rm(f, { force: true });
      dst = await startRegistry();
      return dst;
    };

    // A first copy on a fresh destination, then the re-run there; ours and skopeo's alternate.
    const pairs = async (name: string, repo: string, want: Map<string, string | undefined>): Promise<{ ours: Pair; skopeo: Pair; requests: string }> => {
      const o: Pair = { first: [], inSync: [] };
      const k: Pair = { first: [], inSync: [] };
      for (let i = 0; i < RUNS; i++) {
        let d = await fresh();
        const dataDir = join(work, `${name}-${i}`);
        o.first.push(await ours(d, name, repo, dataDir));
        checkCopied(want, await digests(d, `mirror/${repo.split('/').pop()}`), `ours, ${name} first copy`);
        o.inSync.push(await ours(d, name, repo, dataDir));
        checkCopied(want, await digests(d, `mirror/${repo.split('/').pop()}`), `ours, ${name} in sync`);
        d = await fresh();
        k.first.push(await skopeo(d, repo));
        checkCopied(want, await digests(d, `mirror/${repo.split('/').pop()}`), `skopeo, ${name} first copy`);
        k.inSync.push(await skopeo(d, repo));
        checkCopied(want, await digests(d, `mirror/${repo.split('/').pop()}`), `skopeo, ${name} in sync`);
        note(
          `${name} run ${i + 1}/${RUNS}: first ours ${o.first.at(-1)!.seconds.toFixed(2)} s / skopeo ${k.first.at(-1)!.seconds.toFixed(2)} s; in sync ours ${o.inSync.at(-1)!.seconds.toFixed(2)} s / skopeo ${k.inSync.at(-1)!.seconds.toFixed(2)} s`,
        );
      }
      // One more (unmeasured) pair of ours with the request census: what each run asks of the registries.
      const d = await fresh();
      const counts = join(work, `census-${name}.json`);
      const tally = async (phase: string) => {
        await ours(d, name, repo, join(work, `${name}-census`), { nodeArgs: ['--import', CENSUS], env: { HR_CENSUS_FILE: counts } });
        const c = JSON.parse(await readFile(counts, 'utf8')) as { requests: Record<string, number>; connections: Record<string, number> };
        const side = (origin: string) => (origin.endsWith(`:${src.port}`) ? 'src' : 'dst');
        const by = new Map<string, number>();
        for (const [key, n] of Object.entries(c.requests)) {
          const [origin, method, kind] = key.split(' ');
          const k2 = `${side(origin!)} ${method} ${kind}`;
          by.set(k2, (by.get(k2) ?? 0) + n);
        }
        const total = [...by.values()].reduce((a, b) => a + b, 0);
        const conns = Object.entries(c.connections).map(([origin, n]) => `${side(origin)} ${n}`).join(', ');
        return `${phase}: ${total} requests (${(total / want.size).toFixed(1)} per tag): ${[...by].sort().map(([k2, n]) => `${k2} ${n}`).join(', ')}; connections ${conns}`;
      };
      const requests = `${name} requests, ours: ${await tally('first copy')}\n${' '.repeat(name.length + 17)}${await tally('in sync')}`;
      return { ours: o, skopeo: k, requests };
    };

    note('50-tag rule');
    const r50 = await pairs('sync50', 'bench/sync', expected.sync);
    note('1,000-tag rule');
    const r1000 = await pairs('many1000', 'bench/many', expected.many);

    note('planning 1,000 and 10,000 tags (--dry-run)');
    const planD = await fresh();
    const plan = async (name: string, repo: string) => {
      const s: Sample[] = [];
      for (let i = 0; i < RUNS; i++) s.push(await measure(process.execPath, [CLI, 'run', name, '--config', await config(planD, name, repo), '--dry-run'], { watch: watch(planD) }));
      return medians(s);
    };
    const plan1k = await plan('plan1000', 'bench/many');
    const plan10k = await plan('plan10000', 'bench/huge');

    note('start-up: --help and a 1-tag in-sync run against node -e 0');
    const startD = await fresh();
    const startData = join(work, 'one');
    await ours(startD, 'one', 'bench/one', startData);
    const start = { node: [] as Sample[], help: [] as Sample[], one: [] as Sample[] };
    for (let i = 0; i < Math.max(5, RUNS); i++) {
      start.node.push(await measure(process.execPath, ['-e', '0']));
      start.help.push(await measure(process.execPath, [CLI, '--help']));
      start.one.push(await ours(startD, 'one', 'bench/one', startData));
    }

    let huge: string[] = [];
    if (process.env.BENCH_HUGE === '1') {
      note('10,000 tags: first run and in-sync run (BENCH_HUGE=1)');
      const d = await fresh();
      const first = await ours(d, 'huge', 'bench/huge', join(work, 'huge'));
      const again = await ours(d, 'huge', 'bench/huge', join(work, 'huge'));
      huge = [
        `10,000 tags, first run (manifests only, blobs shared): ${first.seconds.toFixed(2)} s, CPU ${first.cpu.toFixed(2)} s, peak RSS ${first.rssMiB.toFixed(0)} MiB`,
        `10,000 tags, in-sync run: ${again.seconds.toFixed(2)} s, CPU ${again.cpu.toFixed(2)} s, peak RSS ${again.rssMiB.toFixed(0)} MiB`,
      ];
    }

    // ---- the table --------------------------------------------------------------------------
    const f = (x: number, d = 2) => x.toFixed(d);
    const header = `case                       ours s  skopeo s  ratio   ours CPU  skopeo CPU  ratio   reg CPU ours/skopeo   floor ours/skopeo   others ours/skopeo   RSS ours/skopeo MiB`;
    const row = (name: string, o: Sample, k: Sample) =>
      `${name.padEnd(25)} ${f(o.seconds, 3).padStart(7)} ${f(k.seconds, 3).padStart(9)} ${f(o.seconds / k.seconds, 3).padStart(6)}  ${f(o.cpu).padStart(9)} ${f(k.cpu).padStart(11)} ${f(o.cpu / k.cpu, 3).padStart(6)}  ${`${f(o.registryCpu)} / ${f(k.registryCpu)}`.padStart(20)}  ${`${f(o.floor)} / ${f(k.floor)}`.padStart(18)}  ${`${f(o.othersCpu)} / ${f(k.othersCpu)}`.padStart(19)}  ${`${f(o.rssMiB, 0)} / ${f(k.rssMiB, 0)}`.padStart(18)}`;
    const m = {
      first50: { o: medians(r50.ours.first), k: medians(r50.skopeo.first) },
      sync50: { o: medians(r50.ours.inSync), k: medians(r50.skopeo.inSync) },
      first1000: { o: medians(r1000.ours.first), k: medians(r1000.skopeo.first) },
      sync1000: { o: medians(r1000.ours.inSync), k: medians(r1000.skopeo.inSync) },
    };
    out.push(
      `harbor-replicator run (rule concurrency 16) vs skopeo ${skopeoVersion()} sync --all --preserve-digests; medians of ${RUNS} runs, a fresh destination each; ${CORES} cores`,
      `(floor = (our CPU + both registries' CPU) / ${CORES} cores; others = CPU the rest of the machine used meanwhile; every run's digests checked)`,
      header,
      row('50 tags, first copy', m.first50.o, m.first50.k),
      row('50 tags, in sync', m.sync50.o, m.sync50.k),
      row('1,000 tags, first copy', m.first1000.o, m.first1000.k),
      row('1,000 tags, in sync', m.sync1000.o, m.sync1000.k),
      r50.requests,
      r1000.requests,
      `plan (--dry-run), 1,000 tags: ${f(plan1k.seconds)} s, CPU ${f(plan1k.cpu)} s, peak RSS ${f(plan1k.rssMiB, 0)} MiB; 10,000 tags: ${f(plan10k.seconds)} s, CPU ${f(plan10k.cpu)} s, peak RSS ${f(plan10k.rssMiB, 0)} MiB`,
      `start-up, medians of ${start.node.length}: node -e 0 ${f(median(start.node.map((s) => s.seconds * 1000)), 0)} ms; --help ${f(median(start.help.map((s) => s.seconds * 1000)), 0)} ms (CPU ${f(median(start.help.map((s) => s.cpu * 1000)), 0)} ms); 1-tag in-sync run ${f(median(start.one.map((s) => s.seconds * 1000)), 0)} ms (CPU ${f(median(start.one.map((s) => s.cpu * 1000)), 0)} ms, peak RSS ${f(median(start.one.map((s) => s.rssMiB)), 0)} MiB)`,
      ...huge,
    );

    // ---- targets ----------------------------------------------------------------------------
    const withinFloor = (s: Sample) => s.seconds <= s.floor * 1.15;
    const overFloor = (s: Sample) => `wall ${f(s.seconds)} s is ${f((100 * (s.seconds - s.floor)) / s.floor, 0)}% over its floor ${f(s.floor)} s; the rest of the machine used ${f(s.othersCpu)} CPU-s meanwhile`;
    const nodeMs = median(start.node.map((s) => s.seconds * 1000));
    const helpMs = median(start.help.map((s) => s.seconds * 1000));
    const oneMs = median(start.one.map((s) => s.seconds * 1000));
    const floorAllows35 = m.first50.o.floor <= 0.35 * m.first50.k.seconds;
    const targets: Array<[boolean, string]> = [
      [m.first50.o.cpu <= m.first50.k.cpu, `50 tags, first copy: our CPU ${f(m.first50.o.cpu)} s <= skopeo's ${f(m.first50.k.cpu)} s (ratio ${f(m.first50.o.cpu / m.first50.k.cpu, 3)})`],
      [withinFloor(m.first50.o), `50 tags, first copy: wall within 15% of the CPU floor (${overFloor(m.first50.o)})`],
      [
        !floorAllows35 || m.first50.o.seconds <= 0.35 * m.first50.k.seconds,
        `50 tags, first copy: wall <= 0.35 x skopeo where the floor allows it (ratio ${f(m.first50.o.seconds / m.first50.k.seconds, 3)}; our floor is ${f(m.first50.o.floor / m.first50.k.seconds, 3)} x skopeo's wall${floorAllows35 ? '' : ': the floor does not allow 0.35'})`,
      ],
      [m.sync50.o.seconds <= m.sync50.k.seconds, `50 tags, in sync: wall <= 1.0 x skopeo (ratio ${f(m.sync50.o.seconds / m.sync50.k.seconds, 3)})`],
      [
        m.first1000.o.seconds <= 0.35 * m.first1000.k.seconds || withinFloor(m.first1000.o),
        `1,000 tags, first copy: wall <= 0.35 x skopeo (ratio ${f(m.first1000.o.seconds / m.first1000.k.seconds, 3)}) or within 15% of the floor (${overFloor(m.first1000.o)})`,
      ],
      [m.sync1000.o.seconds <= 0.3 * m.sync1000.k.seconds, `1,000 tags, in sync: wall <= 0.3 x skopeo (ratio ${f(m.sync1000.o.seconds / m.sync1000.k.seconds, 3)}; our floor is ${f(m.sync1000.o.floor / m.sync1000.k.seconds, 3)} x skopeo's wall)`],
      [m.first1000.o.cpu <= m.first1000.k.cpu, `1,000 tags, first copy: CPU <= 1.0 x skopeo (ratio ${f(m.first1000.o.cpu / m.first1000.k.cpu, 3)})`],
      [m.sync1000.o.cpu <= m.sync1000.k.cpu, `1,000 tags, in sync: CPU <= 1.0 x skopeo (ratio ${f(m.sync1000.o.cpu / m.sync1000.k.cpu, 3)})`],
      [plan10k.rssMiB <= plan1k.rssMiB * 1.1, `plan: memory flat from 1,000 to 10,000 tags (peak RSS ${f(plan1k.rssMiB, 0)} -> ${f(plan10k.rssMiB, 0)} MiB, within 10%)`],
      [helpMs - nodeMs <= 100, `--help within 100 ms of node -e 0 (+${f(helpMs - nodeMs, 0)} ms)`],
      [oneMs - nodeMs <= 100, `1-tag in-sync run within 100 ms of node -e 0 (+${f(oneMs - nodeMs, 0)} ms)`],
    ];
    out.push('targets:', ...targets.map(([ok, text]) => `  ${ok ? 'met ' : 'MISS'} ${text}`));
  } finally {
    await Promise.all([src.stop(), dst?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
  out.push(`(run-bench took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
