// How every Lambda bundle is built, in one place: the stack hands these options to
// NodejsFunction (esbuild's CLI, local, no Docker) and bench/bundle-bench.ts to esbuild's API, so
// the figures in the README are those of the deployed code.
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';
import { LogLevel, OutputFormat, SourceMapMode, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

/** The repository root (this file runs from dist/infra/). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The Lambda entry points, each exporting `handler` (functions/lambda/<name>.ts). */
export const LAMBDA_ENTRIES = ['webhook', 'api', 'planner', 'copier', 'sweeper'] as const;
export type LambdaName = (typeof LAMBDA_ENTRIES)[number];

/** A Lambda entry file, absolute. */
export function entryOf(name: LambdaName): string {
  return `${REPO_ROOT}functions/lambda/${name}.ts`;
}

/**
 * Whether `@aws-sdk/*` goes into the bundles or is left to the runtime's copy. Bundled, chosen on
 * the figures of `npm run bench` (README, "Deploy on AWS"): the SDK version is the one tested
 * here, not whichever the runtime ships, and a minified ESM bundle imports faster than the
 * runtime's unminified SDK files at a size well within the target.
 */
export const AWS_SDK: 'bundled' | 'external' = 'bundled';

/** The esbuild settings both builders share. */
const SHARED = {
  target: 'node22',
  minify: true,
  /** Prefer packages' ESM builds (the AWS SDK and Powertools ship both): better tree shaking. */
  mainFields: ['module', 'main'],
  /** `undici` -> scripts/undici-lite.cjs (see the file's comment). */
  tsconfig: 'infra/tsconfig.bundle.json',
  /** CommonJS dependencies bundled into ESM call require() for Node built-ins. */
  banner: "import { createRequire as __hrRequire } from 'node:module'; const require = __hrRequire(import.meta.url);",
} as const;

/** The name esbuild replaces with the config's JSON (read by functions/lambda/environment.ts). */
export const CONFIG_DEFINE = 'process.env.REPLICATOR_CONFIG';

/** esbuild `define`: the validated config as a string literal, so handlers need no 4 KiB environment. */
export function configDefine(configJson: string): Record<string, string> {
  return { [CONFIG_DEFINE]: JSON.stringify(configJson) };
}

function externals(sdk: typeof AWS_SDK): string[] {
  return sdk === 'external' ? ['@aws-sdk/*'] : [];
}

/** NodejsFunction's bundling: ESM (`index.mjs`), minified, linked source map, config baked in. */
export function lambdaBundling(configJson: string, sdk: typeof AWS_SDK = AWS_SDK): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: SHARED.target,
    minify: SHARED.minify,
    sourceMap: true,
    sourceMapMode: SourceMapMode.DEFAULT,
    // Stack traces need names and lines, not the sources: a smaller asset.
    sourcesContent: false,
    mainFields: [...SHARED.mainFields],
    tsconfig: `${REPO_ROOT}${SHARED.tsconfig}`,
    banner: SHARED.banner,
    define: configDefine(configJson),
    // An empty list also overrides NodejsFunction's default for nodejs22.x (`@aws-sdk/*` external).
    externalModules: externals(sdk),
    logLevel: LogLevel.WARNING,
  };
}

/** The same build through esbuild's API (the benchmark). `outdir` gets `<entry>.mjs` + map. */
export function esbuildOptions(entry: string, outfile: string, configJson: string, sdk: typeof AWS_SDK = AWS_SDK): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: SHARED.target,
    minify: SHARED.minify,
    sourcemap: 'linked',
    sourcesContent: false,
    mainFields: [...SHARED.mainFields],
    tsconfig: `${REPO_ROOT}${SHARED.tsconfig}`,
    banner: { js: SHARED.banner },
    define: configDefine(configJson),
    external: externals(sdk),
    logLevel: 'warning',
  };
}
