// `npm run bench` (last part): the Lambda bundles as the stack builds them (infra/bundling.ts),
// with the AWS SDK bundled and left external. For each: the minified size, and the median of 5
// cold imports (a fresh `node` importing the bundle, timed inside the child), against the targets:
// <= 1.5 MiB bundled or <= 0.75 MiB external, <= 200 ms to import.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { AWS_SDK, LAMBDA_ENTRIES, REPO_ROOT, entryOf, esbuildOptions } from '../infra/bundling.js';
import { loadDeployment } from '../infra/config.js';

const RUNS = 5;
const MIB = 1024 * 1024;
const TARGET = { bundled: 1.5, external: 0.75, importMs: 200 } as const;
type Sdk = 'bundled' | 'external';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Milliseconds to import `file` in a fresh node, measured by the child itself. */
function coldImport(file: string): number {
  const code = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    // As on Lambda: a region is set; no credentials are needed to import.
    env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (r.status !== 0) throw new Error(`importing ${file} failed:\n${r.stderr}`);
  return Number(r.stdout);
}

interface Row {
  name: string;
  sdk: Sdk;
  mib: number;
  importMs: number;
}

async function main(): Promise<void> {
  const deployment = await loadDeployment(join(REPO_ROOT, 'examples/replicator.yaml'));
  const out = await mkdtemp(join(tmpdir(), 'hr-bundles-'));
  // External @aws-sdk/* must resolve from the bundles as the runtime's copy does on Lambda.
  await symlink(join(REPO_ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
  const entries: Array<[string, string]> = LAMBDA_ENTRIES.map((n): [string, string] => [n, entryOf(n)]);
  const rows: Row[] = [];
  try {
    for (const [name, entry] of entries) {
      for (const sdk of ['bundled', 'external'] as const) {
        const file = join(out, `${name.replace(/\W+/g, '-')}-${sdk}.mjs`);
        await build(esbuildOptions(entry, file, deployment.configJson, sdk));
        const mib = (await stat(file)).size / MIB;
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) times.push(coldImport(file));
        rows.push({ name, sdk, mib, importMs: median(times) });
      }
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }

  const lines = [
    `Lambda bundles (infra/bundling.ts: esbuild, ESM, minified, node22), cold import = median of ${RUNS} fresh node ${process.version} processes on this machine`,
    `targets: <= ${TARGET.bundled} MiB with the SDK bundled, <= ${TARGET.external} MiB external; <= ${TARGET.importMs} ms import. Deployed: SDK ${AWS_SDK}`,
    `${'bundle'.padEnd(16)}${'sdk'.padEnd(10)}${'MiB'.padStart(7)}${'import ms'.padStart(11)}  within targets`,
  ];
  for (const r of rows) {
    const ok = r.mib <= TARGET[r.sdk] && r.importMs <= TARGET.importMs;
    lines.push(`${r.name.padEnd(16)}${r.sdk.padEnd(10)}${r.mib.toFixed(3).padStart(7)}${r.importMs.toFixed(1).padStart(11)}  ${ok ? 'yes' : 'NO'}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
