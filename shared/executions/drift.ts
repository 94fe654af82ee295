import pLimit from 'p-limit';
import type { ManifestHead, RegistryClient } from '../registry/client.js';
import { isTag } from '../registry/names.js';
import type { RegistryType, RuleConfig } from '../rules/config-schema.js';
import { DestinationNameError, destinationRepository, pathRuleOf } from '../rules/destination.js';
import { RuleFilter } from '../rules/filters.js';
import type { PlanItem } from '../rules/plan.js';
import { isReferrerTag } from '../sources/referrer-tags.js';
import { RegistrySource } from '../sources/registry-source.js';
import type { Source, SourceArtifact } from '../sources/source.js';
import { DRIFT_ITEMS_MAX, type DriftCounts, type DriftEntry, type DriftReport, type NewTask } from './model.js';


/** Destination HEADs at once while looking at extra tags. */
const HEAD_CONCURRENCY = 16;

/** One destination repository the rule maps to, as the source listing showed it. */
interface Scope {
  /** The source repositories that map to it (more than one only with flattening). */
  sources: Set<string>;
  /** Every tag the source listed there (before the rule's filters): a tag among them is not extra. */
  tags: Set<string>;
  /** Digests planned into it (this execution's copies may point a tag at any of them). */
  digests: Set<string>;
  /** Destination tags and their digests, from the planner's HEADs. */
  known: Map<string, string>;
}

/**
 * Measures a rule's drift as its full plan goes by: each planned tag the destination lacks
 * (`missing`) or has at another digest (`different`), told by the planner's HEADs (`checked`);
 * then, for a rule with `replicate_deletion`, the destination tags the source no longer has
 * (`extra`, `extras`), each with a deletion task or the reason it is kept. Referrer tags
 * (`isReferrerTag`, sources/referrer-tags.ts) follow their subjects and are never drift: the
 * listers leave them out, and the checks below keep it so for any lister. Entries are streamed to `onEntry` and the first DRIFT_ITEMS_MAX kept for the report.
 */
export class DriftCollector {
  readonly counts: DriftCounts = { missing: 0, different: 0, extra: 0, inSync: 0 };
  private readonly items: DriftEntry[] = [];
  private readonly scopes = new Map<string, Scope>();
  private readonly filter: RuleFilter;

  constructor(
    private readonly rule: RuleConfig,
    private readonly destinationType: RegistryType,
    private readonly onEntry?: (entry: DriftEntry) => void,
  ) {
    this.filter = new RuleFilter(rule);
  }

  /** Whether extra tags are looked for (only a rule that replicates deletions may remove them). */
  get extrasChecked(): boolean {
    return this.rule.replicate_deletion;
  }

  /**
   * The source's lister, noting each repository listed (the planner lists only those its name
   * filters keep) with its destination repository and, when extras are looked for, every tag
   * it lists before the tag filters: the source's side of the rule's scope.
   */
  observe(lister: Source): Source {
    return {
      repositories: (pattern, signal) => lister.repositories(pattern, signal),
      artifacts: (repository, signal) => this.noted(repository, lister.artifacts(repository, signal)),
    };
  }

  private async *noted(repository: string, artifacts: AsyncIterable<SourceArtifact>) {
    const scope = this.scopeOf(repository);
    for await (const a of artifacts) {
      if (scope && this.extrasChecked) for (const t of a.tags) scope.tags.add(t);
      yield a;
    }
  }

  private scopeOf(sourceRepository: string): Scope | undefined {
    let destination: string;
    try {
      destination = destinationRepository(sourceRepository, this.rule.dest_namespace, this.rule.dest_namespace_replace_count, pathRuleOf(this.destinationType));
    } catch (err) {
      if (err instanceof DestinationNameError) return undefined; // an error task of the plan, no scope
      throw err;
    }
    let scope = this.scopes.get(destination);
    if (!scope) this.scopes.set(destination, (scope = { sources: new Set(), tags: new Set(), digests: new Set(), known: new Map() }));
    scope.sources.add(sourceRepository);
    return scope;
  }

  /**
   * A planned artifact and what the destination answered for each of its tags (or its digest,
   * untagged), in order; undefined: not there (or not known).
   */
  checked(item: PlanItem, found: ReadonlyArray<ManifestHead | undefined>): void {
    const digest = item.source.digest;
    const scope = this.scopes.get(item.destination.repository);
    if (digest) scope?.digests.add(digest);
    const tagged = item.destination.tags.length > 0;
    const refs = tagged ? item.destination.tags : digest ? [digest] : [];
    refs.forEach((ref, i) => {
      const head = found[i];
      if (head && tagged) scope?.known.set(ref, head.digest);
      if (tagged && isReferrerTag(ref)) return;
      const side = { repository: item.destination.repository, tag: ref, sourceRepository: item.source.repository, sourceDigest: digest };
      if (!head) this.add({ kind: 'missing', ...side });
      else if (head.digest !== digest) this.add({ kind: 'different', ...side, destinationDigest: head.digest });
      else this.counts.inSync += 1;
    });
  }

  private add(entry: DriftEntry): void {
    this.counts[entry.kind] += 1;
    if (this.items.length < DRIFT_ITEMS_MAX) this.items.push(entry);
    this.onEntry?.(entry);
  }

  /**
   * The destination tags the source no longer has, within the rule's scope: in each
   * destination repository the rule maps to, a tag the source did not list, that the rule's tag
   * filters would keep, and not a referrer tag. None unless the rule replicates deletions.
   *
   * Each extra becomes a deletion task by digest (the distribution API deletes a manifest with
   * all its tags), grouped per digest, unless that would take more than extra tags with it:
   * kept when another tag of the destination repository points at the same digest, when this
   * execution copies that digest there under another tag, or when several source repositories
   * map to the repository. Costs one tags/list per destination repository and, where there are
   * extras, one HEAD per destination tag the planner did not HEAD. The worker checks it all again
   * just before the delete (executions/drift-deletion.ts).
   */
  async extras(
    destination: RegistryClient,
    names: { source: string; destination: string },
    signal?: AbortSignal,
  ): Promise<NewTask[]> {
    if (!this.extrasChecked) return [];
    const tasks: NewTask[] = [];
    const limit = pLimit(HEAD_CONCURRENCY);
    for (const [repository, scope] of this.scopes) {
      const listed: string[] = [];
      const extra: string[] = [];
      for await (const a of new RegistrySource(destination).artifacts(repository, signal)) {
        for (const tag of a.tags) {
          if (!isTag(tag)) continue; // a name the registry should not have listed: never requested
          listed.push(tag);
          if (isReferrerTag(tag) || scope.tags.has(tag)) continue;
          if (!this.filter.artifact({ repository, tags: [tag] }).keep) continue; // outside the rule's scope
          extra.push(tag);
        }
      }
      if (extra.length === 0) continue;
      // What a DELETE by digest would take with it: every tag of the repository, by digest.
      const digests = new Map(scope.known);
      await Promise.all(
        listed
          .filter((t) => !digests.has(t))
          .map((t) =>
            limit(async () => {
              const head = await destination.headManifest(repository, t, signal);
              if (head) digests.set(t, head.digest);
            }),
          ),
      );
      const byDigest = new Map<string, string[]>();
      for (const tag of extra) {
        const digest = digests.get(tag);
        if (!digest) continue; // deleted meanwhile: not there any more
        byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
      }
      for (const [digest, tags] of byDigest) {
        const reason = this.keepReason(repository, scope, digest, tags, listed, digests);
        for (const tag of tags) this.add({ kind: 'extra', repository, tag, destinationDigest: digest, action: reason ? 'keep' : 'delete', ...(reason ? { reason } : {}) });
        if (reason) continue;
        tasks.push({
          operation: 'deletion',
          source: { registry: names.source, repository: [...scope.sources][0]!, tags },
          destination: { registry: names.destination, repository, tags },
          digest,
        });
      }
    }
    return tasks;
  }

  /** Why extra tags at `digest` are not deleted, or undefined when they may be. */
  private keepReason(repository: string, scope: Scope, digest: string, tags: readonly string[], listed: readonly string[], digests: ReadonlyMap<string, string>): string | undefined {
    if (scope.sources.size > 1) {
      return `${scope.sources.size} source repositories map to ${repository} (${[...scope.sources].slice(0, 3).join(', ')}${scope.sources.size > 3 ? ', ...' : ''})`;
    }
    const others = listed.filter((t) => !tags.includes(t) && digests.get(t) === digest);
    if (others.length > 0) {
      return `${digest} is also tagged ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''} at the destination: deleting the manifest would remove those tags too`;
    }
    if (scope.digests.has(digest)) return `${digest} is copied to ${repository} under another tag by this reconcile (deleting the manifest would remove that tag too)`;
    return undefined;
  }

  /** The drift measured so far, as stored and shown. */
  report(at: { execution?: string | undefined; takenAt: string }): DriftReport {
    const total = this.counts.missing + this.counts.different + this.counts.extra;
    return {
      rule: this.rule.name,
      ...(at.execution !== undefined ? { execution: at.execution } : {}),
      takenAt: at.takenAt,
      counts: { ...this.counts },
      extrasChecked: this.extrasChecked,
      items: [...this.items],
      truncated: total > this.items.length,
    };
  }
}

/** Whether a report shows drift (anything missing, different or extra). */
export function hasDrift(report: Pick<DriftReport, 'counts'>): boolean {
  return report.counts.missing + report.counts.different + report.counts.extra > 0;
}
