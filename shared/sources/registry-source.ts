import type { RegistryClient } from '../registry/client.js';
import { specificNames } from '../rules/pattern.js';
import type { Source, SourceArtifact } from './source.js';

/**
 * Lists a registry over the distribution API: `_catalog` and `tags/list`, following `Link`
 * pagination where the registry paginates (docker-registry 2.8 answers tags in one unsorted page).
 * One artifact per tag, as Harbor's native adapter does; untagged manifests cannot be listed.
 */
export class RegistrySource implements Source {
  constructor(
    private readonly client: RegistryClient,
    private readonly pageSize = 1000,
  ) {}

  async *repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const named = specificNames(pattern);
    if (named) {
      yield* named;
      return;
    }
    let next: URL | undefined;
    do {
      const page = await this.client.catalogPage(next, this.pageSize, signal);
      yield* page.items;
      next = page.next;
    } while (next);
  }

  async *artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact> {
    let next: URL | undefined;
    do {
      const page = await this.client.tagsPage(repository, next, this.pageSize, signal);
      for (const tag of page.items) yield { repository, tags: [tag] };
      next = page.next;
    } while (next);
  }
}
