import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsoleAssets } from '../../shared/http/console-routes.js';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Where `npm run build` puts the console: `dist/console/` of the package this file is part of,
 * found by walking up to its package.json (this module runs from dist/functions/ under tsc and
 * from dist/cli/ in the bundle).
 */
export function defaultConsoleDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'console');
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Reads the built console into memory (a few files, tens of KiB); undefined when it was not built. */
export async function loadConsoleAssets(dir = defaultConsoleDir()): Promise<ConsoleAssets | undefined> {
  if (!dir || !existsSync(join(dir, 'index.html'))) return undefined;
  const files = new Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>();
  for (const name of await readdir(join(dir, 'assets'))) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: await readFile(join(dir, 'assets', name)), type });
  }
  return { index: await readFile(join(dir, 'index.html')), files };
}
