// `npm run bench`: harbor-replicator copy against skopeo copy --all --preserve-digests, measured
// in the same run between two local docker-registry instances. Before every run the destination
// restarts on empty storage and skopeo's blob cache is deleted, so both do real copies. Runs
// alternate ours/skopeo; medians of RUNS; time ratio, MB/s and peak RSS of both.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageLayout, indexLayout, pushLayout, type Layout } from '../test/support/fixtures.js';
import { manifestDigest } from '../test/support/inspect.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';

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

interface Sample {
  seconds: number;
  rssMiB: number;
}

/** Runs a command; wall time and peak RSS (GNU time's %M when present, else /proc polling). */
async function measure(cmd: string, args: string[]): Promise<Sample> {
  const gnuTime = existsSync('/usr/bin/time');
  const started = performance.now();
  const child = gnuTime
    ? spawn('/usr/bin/time', ['-f', 'HR_MAXRSS_KB=%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let polledKb = 0;
  const poll = gnuTime
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) polledKb = Math.max(polledKb, Number(m[1]));
        } catch {
          // exited
        }
      }, 5);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (poll) clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${cmd} exited ${code}: ${stderr}`);
  const kb = gnuTime ? Number(/HR_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0) : polledKb;
  return { seconds, rssMiB: kb / 1024 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

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
          await measure(process.execPath, [CLI, 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ref, `${dst.host}/bench/${c.id}:1`]),
        );
        if ((await manifestDigest(dst.url, `bench/${c.id}`, '1')) !== layout.top.digest) throw new Error('our copy has the wrong digest');
        dst = await freshDestination(dst);
        skopeo.push(
          await measure('skopeo', [
            'copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false',
            `docker://${ref}`, `docker://${dst.host}/bench/${c.id}:1`,
          ]),
        );
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
  lines.push(`harbor-replicator copy vs skopeo ${skopeoVersion()} copy --all --preserve-digests; medians of ${RUNS} runs, fresh destination each run`);
  lines.push('case  size      ours s  skopeo s  ratio  ours MB/s  skopeo MB/s  ours RSS MiB  skopeo RSS MiB');
  const result: Record<string, { ratio: number; rss: number }> = {};
  for (const { c, bytes, ours, skopeo } of rows) {
    const o = median(ours.map((s) => s.seconds));
    const k = median(skopeo.map((s) => s.seconds));
    const oRss = median(ours.map((s) => s.rssMiB));
    const kRss = median(skopeo.map((s) => s.rssMiB));
    const ratio = o / k;
    result[c.id] = { ratio, rss: Math.max(...ours.map((s) => s.rssMiB)) };
    lines.push(
      [
        `(${c.id})`.padEnd(5),
        `${(bytes / MiB).toFixed(0)} MiB`.padEnd(9),
        o.toFixed(3).padStart(6),
        k.toFixed(3).padStart(9),
        ratio.toFixed(3).padStart(6),
        (bytes / 1e6 / o).toFixed(1).padStart(10),
        (bytes / 1e6 / k).toFixed(1).padStart(12),
        oRss.toFixed(1).padStart(13),
        kRss.toFixed(1).padStart(15),
      ].join(' '),
    );
  }
  const a = result.a!;
  const checks = [
    [`(a) time ratio ${a.ratio.toFixed(3)} <= 1.05`, a.ratio <= 1.05],
    [`(b) time ratio ${result.b!.ratio.toFixed(3)} <= 1.05`, result.b!.ratio <= 1.05],
    [`(c) peak RSS ${result.c!.rss.toFixed(1)} MiB <= 150 MiB`, result.c!.rss <= 150],
    [`(c) peak RSS within 10% of (a)'s ${a.rss.toFixed(1)} MiB`, result.c!.rss <= a.rss * 1.1],
  ] as const;
  lines.push('targets:');
  for (const [text, ok] of checks) lines.push(`  ${ok ? 'met ' : 'MISS'} ${text}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function skopeoVersion(): string {
  return /version (\S+)/.exec(execFileSync('skopeo', ['--version'], { encoding: 'utf8' }))?.[1] ?? '';
}

await main();
