import { matchPattern, specificNames } from '../rules/pattern.js';
import type { HarborApi } from './harbor-api.js';
import type { Source, SourceArtifact } from './source.js';

/**
 * Lists a Harbor through its API, as Harbor's own adapter does: the projects the first name
 * filter can reach (its first component names them directly when it has no wildcard), their
 * repositories, and each repository's artifacts with digest, tags, labels and type, untagged
 * ones included.
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
      if (first === '' || pattern.startsWith('**') || matchPattern(first, p.name)) yield p.name;
    }
  }

  async *repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const project of this.projectNames(pattern, signal)) {
      for await (const repo of this.api.repositories(project, signal)) yield repo.name;
    }
  }

  async *artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact> {
    for await (const a of this.api.artifacts(repository, signal)) {
      yield {
        repository,
        digest: a.digest,
        tags: (a.tags ?? []).map((t) => t.name),
        labels: (a.labels ?? []).map((l) => l.name),
        type: a.type,
      };
    }
  }
}
