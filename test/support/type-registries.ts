// What the registry-type suites share: two real registries (the source filled), a scratch
// directory, and `harbor-replicator` run with a config written there.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli.js';
import { imageLayout, pushLayout, type Layout } from './fixtures.js';
import { startRegistry, type TestRegistry } from './registry.js';

export interface TypeRegistries {
  src: TestRegistry;
  dst: TestRegistry;
  /** Pushed to the source under `appRefs`. */
  app: Layout;
  /** Pushed to the source under `toolRefs`. */
  tool: Layout;
  dir: string;
}

/** Starts a source and a destination registry and pushes two small images to the source under the given references. */
export async function startTypeRegistries(prefix: string, appRefs: readonly string[], toolRefs: readonly string[]): Promise<TypeRegistries> {
  const [src, dst] = await Promise.all([startRegistry({ relativeUrls: true }), startRegistry({ relativeUrls: true })]);
  const [app, tool] = await Promise.all([imageLayout([{ size: 20_000 }]), imageLayout([{ size: 30_000 }])]);
  for (const ref of appRefs) await pushLayout(app, `${src.host}/${ref}`);
  for (const ref of toolRefs) await pushLayout(tool, `${src.host}/${ref}`);
  return { src, dst, app, tool, dir: await mkdtemp(join(tmpdir(), prefix)) };
}

/** Writes a config into `dir()` and runs `harbor-replicator ARGS` with it (a data dir per call, none for a dry run). */
export function configRunner(dir: () => string) {
  let n = 0;
  return async (config: string, args: string[], env: Record<string, string> = {}) => {
    const file = join(dir(), `config-${++n}.yaml`);
    await writeFile(file, config);
    return runCli([...args, '--config', file, ...(args.includes('--dry-run') ? [] : ['--data-dir', join(dir(), `state-${n}`)])], { env });
  };
}
