// Reads V8 .cpuprofile files (node --cpu-prof) and sums self time by where the code comes from:
// a package of node_modules, an engine module (shared/registry/http.ts, ...), Node's own
// JavaScript (node:internal/...), V8 and C++ builtins, the garbage collector. The bundled CLI
// (dist/cli/*.mjs, minified) is mapped back through its source maps, so a frame is named by the
// file esbuild took it from. Natives and Node internals are also charged to the nearest frame
// above them that is ours or a package's ("who asked"): a socket write is the HTTP client's.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code comes from. */
interface Origin {
  /** `engine`, a package name, `node`, `native`, or a pseudo frame (`(garbage collector)`). */
  kind: string;
  /** The engine file (repo-relative .ts), the package file, or the node: module. */
  file: string;
  name: string;
}

/** Self milliseconds summed by key. */
export type Tally = Map<string, number>;

/** What one or more profiles add up to. */
export interface ProfileSums {
  /** By origin kind: `engine`, each package, `node`, `native`, `(garbage collector)`, `(program)`. */
  byKind: Tally;
  /** Engine self time by module (`shared/registry/http.ts`). */
  byModule: Tally;
  /** Self time by function (`name  file`). */
  byFunction: Tally;
  /** Native and Node-internal self time, charged to the nearest engine or package frame above. */
  byCaller: Tally;
  /** Everything but `(idle)`. */
  busyMs: number;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PSEUDO = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

/** The package a path inside node_modules belongs to (`undici`, `@aws-sdk/client-sqs`). */
function packageOf(path: string): { name: string; file: string } | undefined {
  const at = path.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = path.slice(at + 'node_modules/'.length).split('/');
  const n = parts[0]?.startsWith('@') ? 2 : 1;
  return { name: parts.slice(0, n).join('/'), file: parts.slice(n).join('/') };
}

/** A repo-relative engine file for a path (dist/shared/x.js is shared/x.ts). */
function engineFile(path: string): string {
  const rel = relative(ROOT, path).replace(/^dist\//, '');
  return rel.replace(/\.js$/, '.ts');
}

class Origins {
  private readonly maps = new Map<string, SourceMap | null>();
  private readonly cache = new Map<string, Origin>();

  of(frame: CallFrame): Origin {
    const key = `${frame.url}:${frame.lineNumber}:${frame.columnNumber}:${frame.functionName}`;
    let o = this.cache.get(key);
    if (!o) {
      o = this.compute(frame);
      this.cache.set(key, o);
    }
    return o;
  }

  private compute(frame: CallFrame): Origin {
    const name = frame.functionName || '(anonymous)';
    if (PSEUDO.has(frame.functionName)) return { kind: frame.functionName, file: '', name };
    if (!frame.url) return { kind: 'native', file: '', name };
    if (frame.url.startsWith('node:')) return { kind: 'node', file: frame.url, name };
    if (!frame.url.startsWith('file://')) return { kind: 'other', file: frame.url, name };
    let path = fileURLToPath(frame.url);
    const map = this.sourceMap(path);
    if (map) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string; name?: string };
      if (entry.originalSource) {
        path = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(path), entry.originalSource);
      }
    }
    const pkg = packageOf(path);
    if (pkg) return { kind: pkg.name, file: pkg.file, name };
    // A bundle position without a mapping: esbuild's module wrappers and a chunk's top level (the
    // first call of a lazily compiled CommonJS module body is charged here).
    if (path.endsWith('.mjs')) return { kind: 'engine', file: '(bundle: module wrappers, top level)', name };
    return { kind: 'engine', file: engineFile(path), name };
  }

  /** The source map of a bundled file (dist/cli/*.mjs, or a copy of that directory), null for others. */
  private sourceMap(path: string): SourceMap | null {
    if (!/\/dist\/cli[^/]*\/[^/]+\.mjs$/.test(path)) return null;
    let map = this.maps.get(path);
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
      } catch {
        map = null;
      }
      this.maps.set(path, map);
    }
    return map;
  }
}

const add = (t: Tally, k: string, ms: number) => t.set(k, (t.get(k) ?? 0) + ms);

export function emptySums(): ProfileSums {
  return { byKind: new Map(), byModule: new Map(), byFunction: new Map(), byCaller: new Map(), busyMs: 0 };
}

/** Adds one .cpuprofile file to `sums`. */
export function addProfile(sums: ProfileSums, file: string): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const origins = new Origins();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));

  /** The nearest frame above that is the engine's or a package's ("who asked"). */
  const askedBy = (id: number): string => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const o = origins.of(byId.get(p)!.callFrame);
      if (o.kind === 'engine') return `engine ${o.file}`;
      if (o.kind !== 'node' && o.kind !== 'native' && o.kind !== 'other' && !PSEUDO.has(o.kind)) return `${o.kind} ${o.file}`;
    }
    return 'node (start-up, event loop)';
  };

  for (const [id, ms] of self) {
    const o = origins.of(byId.get(id)!.callFrame);
    if (o.kind === '(idle)') continue;
    sums.busyMs += ms;
    add(sums.byKind, o.kind, ms);
    if (o.kind === 'engine') add(sums.byModule, o.file, ms);
    add(sums.byFunction, `${o.name}  ${o.kind === 'engine' || o.kind === 'node' || o.kind === 'native' || PSEUDO.has(o.kind) ? '' : `${o.kind}/`}${o.file}`, ms);
    if (o.kind === 'native' || o.kind === 'node') add(sums.byCaller, `${o.kind === 'native' ? o.name : 'node internals'} <- ${askedBy(id)}`, ms);
  }
}

/** A table of the largest entries of a tally: milliseconds, share of `total`, and per `per` (a tag). */
export function formatTally(title: string, t: Tally, opts: { total: number; per?: number; top?: number; min?: number }): string {
  const rows = [...t.entries()].sort((a, b) => b[1] - a[1]);
  const shown = rows.slice(0, opts.top ?? 20).filter(([, ms]) => ms >= (opts.min ?? 0));
  const width = Math.min(90, Math.max(20, ...shown.map(([k]) => k.length)));
  const per = opts.per ?? 1;
  const lines = [`${title}`, `  ${'self'.padEnd(width)}  ${'ms'.padStart(8)}  ${'%'.padStart(5)}  ${`ms/${per === 1 ? 'run' : 'tag'}`.padStart(7)}`];
  for (const [k, ms] of shown) {
    lines.push(`  ${(k.length > width ? `${k.slice(0, width - 1)}…` : k).padEnd(width)}  ${ms.toFixed(1).padStart(8)}  ${((100 * ms) / opts.total).toFixed(1).padStart(5)}  ${(ms / per).toFixed(2).padStart(7)}`);
  }
  const rest = rows.slice(shown.length).reduce((n, [, ms]) => n + ms, 0);
  if (rest > 0) lines.push(`  ${`(${rows.length - shown.length} more)`.padEnd(width)}  ${rest.toFixed(1).padStart(8)}  ${((100 * rest) / opts.total).toFixed(1).padStart(5)}  ${(rest / per).toFixed(2).padStart(7)}`);
  return lines.join('\n');
}

/** Engine self time by directory (shared/registry, shared/copy, ...). */
export function byDirectory(modules: Tally): Tally {
  const t: Tally = new Map();
  for (const [file, ms] of modules) add(t, `${dirname(file)}/*`, ms);
  return t;
}

/** Divides every entry (an average over rounds). */
export function scaled(sums: ProfileSums, by: number): ProfileSums {
  const s = (t: Tally) => new Map([...t].map(([k, v]) => [k, v / by]));
  return { byKind: s(sums.byKind), byModule: s(sums.byModule), byFunction: s(sums.byFunction), byCaller: s(sums.byCaller), busyMs: sums.busyMs / by };
}
