// `npm run profile`: where the CPU of a 50-tag rule goes. Runs `harbor-replicator run` of the
// bench's 50-tag rule (2 x 256 KiB layers per tag) under `node --cpu-prof`, a first copy to a
// fresh destination and then the in-sync re-run, PROFILE_ROUNDS times (default 3, a fresh
// destination and data dir each round), and prints self time averaged over the rounds: by
// package, by engine module, the heaviest functions, and natives by who called them. The
// .cpuprofile files are kept in PROFILE_DIR when it is set (gitignored: *.cpuprofile).
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageLayout, pushLayout } from '../test/support/fixtures.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { addProfile, byDirectory, emptySums, formatTally, scaled, type ProfileSums } from './cpuprofile.js';
import { measure, type Sample } from './measure.js';

const ROUNDS = Number(process.env.PROFILE_ROUNDS ?? 3);
const TAGS = 50;
const CLI = fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
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
    for (let round = 0; round < ROUNDS; round++) {
      await dst?.stop();
      dst = await startRegistry();
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
        samples[phase].push(
          await measure(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, CLI, 'run', 'sync50', '--config', config, '--data-dir', dataDir, '--quiet'], {
            watch: [src.process.pid, dst.process.pid],
          }),
        );
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
        `=== ${phase === 'first' ? 'first copy' : 'in-sync re-run'}, ${TAGS} tags: averages of ${ROUNDS} profiled runs (profiling adds its own cost) ===`,
        `wall ${avg('seconds').toFixed(3)} s, our CPU ${avg('cpu').toFixed(3)} s (${((1000 * avg('cpu')) / TAGS).toFixed(1)} ms/tag), registries' CPU ${avg('registryCpu').toFixed(3)} s, peak RSS ${avg('rssMiB').toFixed(0)} MiB; sampled busy ${sums.busyMs.toFixed(0)} ms`,
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
