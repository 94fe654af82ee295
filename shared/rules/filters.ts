import type { FilterConfig, RuleConfig } from './config-schema.js';
import { matchPattern } from '../harbor/patterns.js';
import type { ArtifactFacts } from '../sources/source.js';


/** A filter's answer: kept (with the tags that survive), or left out and why. */
export type Verdict = { keep: true; tags: string[] } | { keep: false; reason: string };

const quote = (f: FilterConfig) => `${f.type} filter ${JSON.stringify(f.value ?? '')}${f.decoration === 'excludes' ? ' (excludes)' : ''}`;

function labelsOf(f: FilterConfig): string[] {
  if (Array.isArray(f.value)) return f.value;
  return f.value ? [f.value] : [];
}

/**
 * A rule's filters with Harbor's semantics (`pkg/reg/filter`): name filters on the full
 * repository path, tag filters narrowing the tags one filter after another, label filters
 * requiring every listed label, all of them with `matches` (keep what matches) or `excludes`
 * (keep what does not). Where Harbor is weak we are explicit: untagged artifacts are kept exactly
 * when `include_untagged` is on (Harbor matches them against an empty tag, issue 11233), and a
 * `resource: image` filter keeps images only (Harbor validates the filter but applies nothing).
 */
export class RuleFilter {
  private readonly names: FilterConfig[];
  private readonly tagFilters: FilterConfig[];
  private readonly labelFilters: FilterConfig[];
  private readonly resource: FilterConfig | undefined;

  constructor(private readonly rule: Pick<RuleConfig, 'filters' | 'include_untagged'>) {
    this.names = rule.filters.filter((f) => f.type === 'name');
    this.tagFilters = rule.filters.filter((f) => f.type === 'tag');
    this.labelFilters = rule.filters.filter((f) => f.type === 'label');
    this.resource = rule.filters.find((f) => f.type === 'resource');
  }

  /** The first name filter's pattern (what narrows a listing), or '' for everything. */
  get namePattern(): string {
    const first = this.names.find((f) => f.decoration !== 'excludes');
    return typeof first?.value === 'string' ? first.value : '';
  }

  /** Whether a repository (full path, `library/nginx`) passes the name filters. */
  repository(name: string): Verdict {
    for (const f of this.names) {
      const pattern = typeof f.value === 'string' ? f.value : '';
      const hit = matchPattern(pattern, name);
      if (f.decoration === 'excludes' ? hit && pattern !== '' : !hit) {
        return { keep: false, reason: `repository ${f.decoration === 'excludes' ? 'excluded by' : 'does not match'} ${quote(f)}` };
      }
    }
    return { keep: true, tags: [] };
  }

  /** Whether a label filter of the rule can decide anything (it names at least one label). */
  get filtersLabels(): boolean {
    return this.labelFilters.some((f) => labelsOf(f).length > 0);
  }

  /** Whether an artifact passes the tag, label and resource filters, and which tags survive. */
  artifact(a: ArtifactFacts): Verdict {
    if (this.resource?.value === 'image' && a.type !== undefined && a.type.toUpperCase() !== 'IMAGE') {
      return { keep: false, reason: `type ${a.type} left out by ${quote(this.resource)}` };
    }
    for (const f of this.labelFilters) {
      const wanted = labelsOf(f);
      if (wanted.length === 0) continue;
      const has = new Set(a.labels ?? []);
      const all = wanted.every((l) => has.has(l));
      if (f.decoration === 'excludes' ? all : !all) {
        return { keep: false, reason: f.decoration === 'excludes' ? `carries every label of ${quote(f)}` : `lacks a label of ${quote(f)}` };
      }
    }
    if (a.tags.length === 0) {
      return this.rule.include_untagged ? { keep: true, tags: [] } : { keep: false, reason: 'untagged (include_untagged is off)' };
    }
    let tags = [...a.tags];
    for (const f of this.tagFilters) {
      const pattern = typeof f.value === 'string' ? f.value : '';
      const before = tags;
      tags = tags.filter((t) => (f.decoration === 'excludes' ? !(pattern !== '' && matchPattern(pattern, t)) : matchPattern(pattern, t)));
      if (tags.length === 0) {
        return { keep: false, reason: `tag${before.length > 1 ? 's' : ''} ${before.join(', ')} ${f.decoration === 'excludes' ? 'excluded by' : 'not matching'} ${quote(f)}` };
      }
    }
    return { keep: true, tags };
  }
}
