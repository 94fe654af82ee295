import { Minimatch } from 'minimatch';

/**
 * Harbor's pattern matching (`pkg/reg/util/pattern.go`: doublestar v1.3.4) through minimatch with
 * the options that give doublestar's behaviour rather than a shell's: `*` and `?` stop at `/`,
 * `**` crosses it as a whole path component, `{a,b}` and `[a-z]` work, and `!`, `#` and extglobs
 * are plain characters. An empty pattern matches everything.
 */
const OPTIONS = { nonegate: true, nocomment: true, noext: true, dot: true } as const;

const cache = new Map<string, Minimatch>();

/** True when `value` matches Harbor pattern `pattern`. */
export function matchPattern(pattern: string, value: string): boolean {
  if (pattern === '') return true;
  // doublestar lets `*` match the empty string; minimatch does not.
  if (value === '') return /^\*+$/.test(pattern);
  let m = cache.get(pattern);
  if (!m) {
    m = new Minimatch(pattern, OPTIONS);
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, m);
  }
  return m.match(value);
}

/**
 * The names a pattern stands for when it has no wildcard (`library/nginx`,
 * `library/{nginx,redis}`): Harbor then skips the catalog and uses them directly
 * (`util.IsSpecificPath`). Undefined when the pattern has wildcards.
 */
export function specificNames(pattern: string): string[] | undefined {
  if (pattern === '' || /[*?[\]^\\]/.test(pattern)) return undefined;
  let names = [''];
  for (const component of pattern.split('/')) {
    const m = /^([^{}]*)\{([^{}]*)\}([^{}]*)$/.exec(component);
    if (/[{}]/.test(component) && !m) return undefined; // more than one group: not specific
    const options = m ? m[2]!.split(',').map((o) => `${m[1]}${o}${m[3]}`) : [component];
    names = names.flatMap((prefix) => options.map((o) => (prefix ? `${prefix}/${o}` : o)));
  }
  return names;
}
