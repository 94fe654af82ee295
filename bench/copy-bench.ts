// `npm run bench`: harbor-replicator copy against skopeo copy --all --preserve-digests, measured
// in the same run between two local docker-registry instances. Before every run the destination
// restarts on empty storage and skopeo's blob cache is deleted, so both do real copies. Runs
// alternate ours/skopeo; medians of RUNS; time ratio, MB/s, CPU, the registries' CPU and the
// CPU floor, and peak RSS of both (bench/measure.ts); every copy's digest is checked.
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageLayout, indexLayout, pushLayout, type Layout } from '../test/support/fixtures.js';
import { manifestDigest } from '../test/support/inspect.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { CORES, measure, medians, skopeoVersion, type Sample } from './measure.js';

const MiB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// BENCH_CLI: another build's bin.mjs (A/B comparisons).
const CLI = process.env.BENCH_CLI ?? fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const SKOPEO_CACHES = [
  '/var/lib/containers/cache/blob-info-cache-v1.boltdb',
  join(homedir(), '.local/share/containers/cache/blob-info-cache-v1.boltdb'),
];

interface Case {
  id: string;
  title: string;
  make: () => Promise<Layout>;
}

const CASES: Case[] = [
  { id: 'a', title: 'one image, 4 x 64 MiB layers', make: () => imageLayout(Array.from({ length: 4 }, () => ({ size: 64 * MiB }))) },
  {
    id: 'b',
    title: 'two-platform index, 3 x 16 MiB layers each',
    make: () =>
      indexLayout(
        [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
        Array.from({ length: 3 }, () => ({ size: 16 * MiB })),
      ),
  },
  { id: 'c', title: 'one 1 GiB layer', make: () => imageLayout([{ size: 1024 * MiB }]) },
];

async function freshDestination(current: TestRegistry | undefined): Promise<TestRegistry> {
  await current?.stop();
  for (const f of SKOPEO_CACHES) await rm(f, { force: true });
  return startRegistry();
}

async function main(): Promise<void> {
  const src = await startRegistry();
  let dst: TestRegistry | undefined;
  const rows: Array<{ c: Case; bytes: number; ours: Sample[]; skopeo: Sample[] }> = [];
  try {
    for (const c of CASES) {
      process.stderr.write(`bench: preparing (${c.id}) ${c.title}\n`);
      const layout = await c.make();
      const ref = `${src.host}/bench/${c.id}:1`;
      await pushLayout(layout, ref);
      const bytes = layout.blobs.reduce((n, b) => n + b.size, 0);
      const ours: Sample[] = [];
      const skopeo: Sample[] = [];
      for (let i = 0; i < RUNS; i++) {
        dst = await freshDestination(dst);
        ours.push(
          await measure(process.execPath, [CLI, 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ref, `${dst.host}/bench/${c.id}:1`], {
            watch: [src.process.pid, dst.process.pid],
          }),
        );
        if ((await manifestDigest(dst.url, `bench/${c.id}`, '1')) !== layout.top.digest) throw new Error('our copy has the wrong digest');
        dst = await freshDestination(dst);
        skopeo.push(
          await measure(
            'skopeo',
            ['copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${ref}`, `docker://${dst.host}/bench/${c.id}:1`],
            { watch: [src.process.pid, dst.process.pid] },
          ),
        );
        if ((await manifestDigest(dst.url, `bench/${c.id}`, '1')) !== layout.top.digest) throw new Error("skopeo's copy has the wrong digest");
        process.stderr.write(
          `bench: (${c.id}) run ${i + 1}/${RUNS}: ours ${ours.at(-1)!.seconds.toFixed(2)} s, skopeo ${skopeo.at(-1)!.seconds.toFixed(2)} s\n`,
        );
      }
      rows.push({ c, bytes, ours, skopeo });
      await rm(layout.dir, { recursive: true, force: true });
    }
  } finally {
    await Promise.all([src.stop(), dst?.stop()]);
  }

  const lines: string[] = [];
  lines.push(`harbor-replicator copy vs skopeo ${skopeoVersion()} copy --all --preserve-digests; medians of ${RUNS} runs, fresh destination each run; ${CORES} cores`);
  lines.push('(floor = (our CPU + both registries\' CPU) / cores; others = CPU the rest of the machine used meanwhile; every copy\'s digest checked)');
  lines.push('case  size      ours s  skopeo s  ratio  ours MB/s  skopeo MB/s  ours CPU  skopeo CPU  floor ours/skopeo  others ours/skopeo  RSS ours/skopeo MiB');
  const result: Record<string, { o: Sample; k: Sample; maxRss: number }> = {};
  for (const { c, bytes, ours, skopeo } of rows) {
    const o = medians(ours);
    const k = medians(skopeo);
    result[c.id] = { o, k, maxRss: Math.max(...ours.map((s) => s.rssMiB)) };
    lines.push(
      [
        `(${c.id})`.padEnd(5),
        `${(bytes / MiB).toFixed(0)} MiB`.padEnd(9),
        o.seconds.toFixed(3).padStart(6),
        k.seconds.toFixed(3).padStart(9),
        (o.seconds / k.seconds).toFixed(3).padStart(6),
        (bytes / 1e6 / o.seconds).toFixed(1).padStart(10),
        (bytes / 1e6 / k.seconds).toFixed(1).padStart(12),
        o.cpu.toFixed(2).padStart(9),
        k.cpu.toFixed(2).padStart(11),
        `${o.floor.toFixed(2)} / ${k.floor.toFixed(2)}`.padStart(18),
        `${o.othersCpu.toFixed(2)} / ${k.othersCpu.toFixed(2)}`.padStart(19),
        `${o.rssMiB.toFixed(1)} / ${k.rssMiB.toFixed(1)}`.padStart(20),
      ].join(' '),
    );
  }
  const ratio = (id: string) => result[id]!.o.seconds / result[id]!.k.seconds;
  const a = result.a!;
  const checks = [
    [`(a) one image of 4 x 64 MiB: time ratio ${ratio('a').toFixed(3)} <= 1.05`, ratio('a') <= 1.05],
    [`(b) two-platform index: time ratio ${ratio('b').toFixed(3)} <= 1.05`, ratio('b') <= 1.05],
    [`(c) one 1 GiB layer: time ratio ${ratio('c').toFixed(3)} <= 1.05`, ratio('c') <= 1.05],
    [`(c) one 1 GiB layer: peak RSS ${result.c!.maxRss.toFixed(1)} MiB (the largest of ${RUNS} runs) <= 80 MiB`, result.c!.maxRss <= 80],
    [`(c) peak RSS within 10% of (a)'s ${a.maxRss.toFixed(1)} MiB (memory flat in the blob size)`, result.c!.maxRss <= a.maxRss * 1.1],
  ] as const;
  lines.push('targets:');
  for (const [text, ok] of checks) lines.push(`  ${ok ? 'met ' : 'MISS'} ${text}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}


await main();
