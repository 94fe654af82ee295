#!/usr/bin/env node
// `npm run build`: type-checks and compiles everything with tsc (dist/, used by the tests),
// then bundles the CLI with esbuild (dist/cli/, what bin/harbor-replicator.js runs): one file per
// command chunk, so a command loads only what it needs and start-up stays short. Last, the
// replication console (console/): type-checked and bundled for browsers into dist/console/.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
// `--console`: only the console (quick, while working on the page).
const consoleOnly = process.argv.includes('--console');
if (!consoleOnly) execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.json`], { stdio: 'inherit' });

/**
 * Maps the engine's `undici` imports to what it uses (Agent, Dispatcher#request, the connector),
 * and two modules inside undici that the engine never reaches to stand-ins
 * (scripts/undici-lite-stubs.cjs): 5-10 ms less start-up for every command that makes a request.
 */
const undiciLite = {
  name: 'undici-lite',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: `${root}scripts/undici-lite.cjs` }));
    const stubs = `${root}scripts/undici-lite-stubs.cjs`;
    b.onResolve({ filter: /^\.\/client-h2\.js$/ }, (a) => (a.importer.includes('/undici/lib/dispatcher/') ? { path: stubs } : undefined));
    b.onResolve({ filter: /^\.\.\/web\/fetch\/body\.js$/ }, (a) => (a.importer.includes('/undici/lib/dispatcher/') ? { path: stubs } : undefined));
  },
};

if (!consoleOnly) await buildCli();

async function buildCli() {
rmSync(`${root}dist/cli`, { recursive: true, force: true });
await build({
  entryPoints: [`${root}functions/cli/bin.ts`],
  outdir: `${root}dist/cli`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  outExtension: { '.js': '.mjs' },
  plugins: [undiciLite],
  // better-sqlite3 is a native addon found relative to its package (bindings): load it from node_modules.
  external: ['better-sqlite3'],
  // CommonJS dependencies (undici) call require() for Node built-ins.
  banner: { js: "import { createRequire as __hrRequire } from 'node:module'; const require = __hrRequire(import.meta.url);" },
  logLevel: 'warning',
});
}

// The console: one script and one stylesheet with content-hashed names (served with a year's
// cache), and index.html naming them (revalidated on each load). Everything from the package:
// no CDN, nothing inline (the CSP allows neither).
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}console/tsconfig.json`], { stdio: 'inherit' });
rmSync(`${root}dist/console`, { recursive: true, force: true });
const web = await build({
  entryPoints: { app: `${root}console/src/main.tsx`, console: `${root}console/console.css` },
  outdir: `${root}dist/console/assets`,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox111', 'safari16.4'],
  minify: !process.argv.includes('--dev'),
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  logLevel: 'warning',
});
const built = Object.entries(web.metafile.outputs);
const output = (entry) => basename(built.find(([, o]) => o.entryPoint === entry)[0]);
writeFileSync(
  `${root}dist/console/index.html`,
  readFileSync(`${root}console/index.html`, 'utf8').replace('%CONSOLE_JS%', output('console/src/main.tsx')).replace('%CONSOLE_CSS%', output('console/console.css')),
);
copyFileSync(`${root}console/favicon.svg`, `${root}dist/console/assets/favicon.svg`);
