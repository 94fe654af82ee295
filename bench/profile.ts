// `npm run profile`: where the CPU of a 50-tag rule goes. Runs `harbor-replicator run` of the
// bench's 50-tag rule (2 x 256 KiB layers per tag) under `node --cpu-prof`, a first copy to a
// fresh destination and then the in-sync re-run, PROFILE_ROUNDS times (default 3, a fresh
// destination and data dir each round), and prints self time averaged over the rounds: by
// package, by engine module, the heaviest functions, and natives by who called them. The
// .cpuprofile files are kept in PROFILE_DIR when it is set (gitignored: *.cpuprofile).
//
// The registries are pinned to the last core and the profiled process to the others
// (PROFILE_PIN=0 to share all cores). Shared, a request that wakes a registry thread lets it
// preempt us on our own core, and V8's sampler charges that time to the frame we were in: the
// socket write (`writeLatin1String`) then shows the registry's CPU, not ours (118-150 ms per
// first copy shared, 27-34 ms pinned). PROFILE_CLI profiles another build's bin.mjs.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageLayout, pushLayout } from '../test/support/fixtures.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { addProfile, byDirectory, emptySums, formatTally, scaled, type ProfileSums } from './cpuprofile.js';
import { CORES, measure, type Sample } from './measure.js';

const ROUNDS = Number(process.env.PROFILE_ROUNDS ?? 3);
const TAGS = 50;
const CLI = process.env.PROFILE_CLI ?? fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const PIN = process.env.PROFILE_PIN !== '0' && CORES > 1;

/** Every thread of `pid` onto these cores (taskset). */
function pin(pid: number | undefined, cores: string): void {
  if (pid) execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
}
const CENSUS = new URL('./request-census.js', import.meta.url).href;
const KiB = 1024;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hr-profile-'));
  const keep = process.env.PROFILE_DIR;
  const src = await startRegistry();
  let dst: TestRegistry | undefined;
  try {
    process.stderr.write(`profile: pushing ${TAGS} tags x 2 x 256 KiB with skopeo\n`);
    for (let i = 0; i < TAGS; i++) {
      const layout = await imageLayout([{ size: 256 * KiB }, { size: 256 * KiB }]);
      await pushLayout(layout, `${src.host}/bench/sync:v${String(i).padStart(2, '0')}`);
      await rm(layout.dir, { recursive: true, force: true });
    }
    const phases = { first: emptySums(), inSync: emptySums() };
    const samples = { first: [] as Sample[], inSync: [] as Sample[] };
    const census = { first: new Map<string, number>(), inSync: new Map<string, number>() };
    for (let round = 0; round < ROUNDS; round++) {
      await dst?.stop();
      dst = await startRegistry();
      if (PIN) for (const pid of [src.process.pid, dst.process.pid]) pin(pid, String(CORES - 1));
      const config = join(work, 'rule.yaml');
      await writeFile(
        config,
        `registries:
  - {name: src, type: docker-registry, url: "http://${src.host}"}
  - {name: dst, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: sync50, src_registry: src, dest_registry: dst, dest_namespace: mirror, concurrency: 16, filters: [{type: name, value: "bench/sync"}]}
`,
      );
      const dataDir = join(work, `data-${round}`);
      for (const phase of ['first', 'inSync'] as const) {
        const dir = join(keep ?? work, `${phase}-${round}`);
        const counts = join(work, `census-${phase}-${round}.json`);
        samples[phase].push(
          await measure(PIN ? 'taskset' : process.execPath, [...(PIN ? ['-c', `0-${CORES - 2}`, process.execPath] : []), '--cpu-prof', '--cpu-prof-dir', dir, '--import', CENSUS, CLI, 'run', 'sync50', '--config', config, '--data-dir', dataDir, '--quiet'], {
            watch: [src.process.pid, dst.process.pid],
            env: { HR_CENSUS_FILE: counts },
          }),
        );
        const c = JSON.parse(await readFile(counts, 'utf8')) as { requests: Record<string, number>; connections: Record<string, number> };
        const side = (origin: string) => (origin.includes(`:${src.port}`) ? 'source' : 'destination');
        for (const [k, n] of Object.entries(c.requests)) {
          const [origin, method, kind] = k.split(' ');
          const key = `${side(origin!)} ${method} ${kind}`;
          census[phase].set(key, (census[phase].get(key) ?? 0) + n);
        }
        for (const [origin, n] of Object.entries(c.connections)) {
          const key = `${side(origin)} connections opened`;
          census[phase].set(key, (census[phase].get(key) ?? 0) + n);
        }
        for (const f of await readdir(dir)) if (f.endsWith('.cpuprofile')) addProfile(phases[phase], join(dir, f));
      }
      process.stderr.write(`profile: round ${round + 1}/${ROUNDS} done\n`);
    }
    const out: string[] = [];
    for (const phase of ['first', 'inSync'] as const) {
      const sums: ProfileSums = scaled(phases[phase], ROUNDS);
      const s = samples[phase];
      const avg = (k: keyof Sample) => s.reduce((n, x) => n + x[k], 0) / s.length;
      out.push(
        '',
        `=== ${phase === 'first' ? 'first copy' : 'in-sync re-run'}, ${TAGS} tags: averages of ${ROUNDS} profiled runs (profiling adds its own cost)${PIN ? `; registries pinned to core ${CORES - 1}, us to the others` : ''} ===`,
        `wall ${avg('seconds').toFixed(3)} s, our CPU ${avg('cpu').toFixed(3)} s (${((1000 * avg('cpu')) / TAGS).toFixed(1)} ms/tag), registries' CPU ${avg('registryCpu').toFixed(3)} s, the rest of the machine ${avg('othersCpu').toFixed(3)} s, peak RSS ${avg('rssMiB').toFixed(0)} MiB; sampled busy ${sums.busyMs.toFixed(0)} ms`,
        `requests per run: ${[...census[phase]].sort().map(([k, n]) => `${k} ${(n / ROUNDS).toFixed(0)}`).join(', ')}`,
        formatTally('by package (engine = our code; node = Node’s own JS; native = V8/C++ builtins):', sums.byKind, { total: sums.busyMs, per: TAGS, top: 25 }),
        formatTally('engine by directory:', byDirectory(sums.byModule), { total: sums.busyMs, per: TAGS }),
        formatTally('engine by module:', sums.byModule, { total: sums.busyMs, per: TAGS, top: 25 }),
        formatTally('heaviest functions:', sums.byFunction, { total: sums.busyMs, per: TAGS, top: 25 }),
        formatTally('natives and Node internals, by who asked:', sums.byCaller, { total: sums.busyMs, per: TAGS, top: 25 }),
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await Promise.all([src.stop(), dst?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
