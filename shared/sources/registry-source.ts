import type { Scope } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import { PageWalk } from '../registry/pagination.js';
import { specificNames } from '../harbor/patterns.js';
import { isReferrerTag, referrerTagCatalog } from './referrer-tags.js';
import type { Source, SourceArtifact } from './source.js';

/**
 * Lists a registry over the distribution API: `_catalog` and `tags/list`, following `Link`
 * pagination where the registry paginates (docker-registry 2.8 answers tags in one unsorted page).
 * One artifact per tag, as Harbor's native adapter does; untagged manifests cannot be listed.
 * Referrer tags (`sha256-<hex>`, `sha256-<hex>.sig`, ...) are not artifacts: they follow their
 * subjects, and the whole repository's are recorded in the client's catalog of them
 * (referrer-tags.ts `referrerTagCatalog`) before its last page's
 * artifacts are yielded (a registry that answers in one page, as docker-registry 2.8 does, has
 * them recorded before any of its subjects is planned). Every walk is bounded (PageWalk: no page
 * twice, the cursor forward, `limits.max_pages`).
 */
export class RegistrySource implements Source {
  constructor(
    private readonly client: RegistryClient,
    private readonly pageSize = 1000,
    /** Token scopes a registry type asks differently (Quay's catalog, Azure's tag listing). */
    private readonly scopes: { catalog?: readonly Scope[]; tags?: (repository: string) => readonly Scope[] } = {},
  ) {}

  async *repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const named = specificNames(pattern);
    if (named) {
      yield* named;
      return;
    }
    const walk = new PageWalk(this.client.host, 'catalog', this.client.limits.maxPages);
    let next: URL | undefined;
    do {
      const page = await this.client.catalogPage(next, this.pageSize, signal, this.scopes.catalog);
      next = walk.next(page.url, page.next);
      yield* page.items;
    } while (next);
  }

  async *artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact> {
    const walk = new PageWalk(this.client.host, `${repository} tags`, this.client.limits.maxPages);
    const referrers: string[] = [];
    let next: URL | undefined;
    do {
      const page = await this.client.tagsPage(repository, next, this.pageSize, signal, this.scopes.tags?.(repository));
      next = walk.next(page.url, page.next);
      const subjects: string[] = [];
      for (const tag of page.items) (isReferrerTag(tag) ? referrers : subjects).push(tag);
      if (!next) referrerTagCatalog(this.client).record(this.client.host, repository, referrers);
      for (const tag of subjects) yield { repository, tags: [tag] };
    } while (next);
  }
}
