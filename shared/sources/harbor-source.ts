import { matchPattern, specificNames } from '../harbor/patterns.js';
import { accessoriesOf, isProjectName, type HarborApi } from './harbor-api.js';
import { isReferrerTag } from './referrer-tags.js';
import type { Source, SourceArtifact } from './source.js';

/**
 * Lists a Harbor through its API, as Harbor's own adapter does: the projects the first name
 * filter can reach (its first component names them directly when it has no wildcard), their
 * repositories, and each repository's artifacts with digest, tags, labels and type, untagged
 * ones included, and its accessories (signatures, SBOMs, attestations), which follow it. A tag
 * that follows a subject (`sha256-<hex>.att`, ...) is not a tag of an artifact of its own, and an
 * artifact tagged only so is no artifact.
 */
export class HarborSource implements Source {
  constructor(private readonly api: HarborApi) {}

  private async *projectNames(pattern: string, signal?: AbortSignal): AsyncGenerator<string> {
    const first = pattern.split('/', 1)[0] ?? '';
    const named = specificNames(first);
    if (named) {
      for (const name of named) {
        // `name` is a fuzzy query: keep the exact match only.
        for await (const p of this.api.projects(name, signal)) if (p.name === name) yield p.name;
      }
      return;
    }
    for await (const p of this.api.projects(undefined, signal)) {
      // Proxy-cache projects mirror another registry on demand: nothing to replicate from them.
      if ((p.registry_id ?? 0) > 0) continue;
      const name = text(p.name);
      if (first === '' || pattern.startsWith('**') || matchPattern(first, name)) yield name;
    }
  }

  async *repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const project of this.projectNames(pattern, signal)) {
      if (!isProjectName(project)) {
        // A name Harbor itself would not accept: nothing is requested with it. Yielded as it
        // is, so the planner reports it (INVALID_NAME, escaped) when the rule selects it.
        yield project;
        continue;
      }
      for await (const repo of this.api.repositories(project, signal)) yield text(repo.name);
    }
  }

  async *artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact> {
    for await (const a of this.api.artifacts(repository, signal)) {
      const all = Array.isArray(a.tags) ? a.tags.map((t) => text(t?.name)) : [];
      const tags = all.filter((t) => !isReferrerTag(t));
      if (all.length > 0 && tags.length === 0) continue;
      yield {
        repository,
        digest: a.digest === undefined || a.digest === null ? undefined : text(a.digest),
        tags,
        labels: Array.isArray(a.labels) ? a.labels.map((l) => text(l?.name)) : [],
        type: a.type,
        accessories: accessoriesOf(a.accessories),
      };
    }
  }
}

/**
 * A name from Harbor's JSON as a string, whatever its type: the planner checks names against
 * the grammar, and a number or an object becomes an invalid name there, not a crash here.
 */
function text(v: unknown): string {
  return typeof v === 'string' ? v : String(JSON.stringify(v));
}
