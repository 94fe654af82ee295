import { specificNames } from '../harbor/patterns.js';
import type { RegistryClient } from '../registry/client.js';
import { isReferrerTag, referrerTagCatalog } from '../sources/referrer-tags.js';
import { RegistrySource } from '../sources/registry-source.js';
import type { Source, SourceArtifact } from '../sources/source.js';

/**
 * A source listed through its provider's API where the registry serves no `_catalog`, or not the
 * whole of it. A name filter that spells out its repositories is taken as it is (no listing at
 * all); otherwise `listed` walks the provider's API. A repository's tags come from the API where
 * `tagsOf` has them, else from the registry's own `tags/list`.
 */
/** Tags as a provider's API gives them: pages as they come, or one answer. */
type Tags = AsyncIterable<string> | Iterable<string>;

export abstract class ProviderSource implements Source {
  private readonly registry: RegistrySource;

  constructor(private readonly client: RegistryClient) {
    this.registry = new RegistrySource(client);
  }

  /** The repositories a name filter that does not spell them out may match. */
  protected abstract listed(pattern: string, signal?: AbortSignal): AsyncIterable<string>;

  /** A repository's tags through the provider's API; undefined where the registry lists them. */
  protected tagsOf(_repository: string, _signal?: AbortSignal): Tags | undefined | Promise<Tags | undefined> {
    return undefined;
  }

  async *repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    yield* specificNames(pattern) ?? this.listed(pattern, signal);
  }

  async *artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact> {
    const tags = await this.tagsOf(repository, signal);
    if (!tags) {
      yield* this.registry.artifacts(repository, signal);
      return;
    }
    // Referrer tags (cosign's `sha256-<hex>.sig`, the tag schema's `sha256-<hex>`) follow their
    // subjects: no artifacts of their own; recorded once the listing ended (a subject planned
    // before then has them listed once more by its copy).
    const referrers: string[] = [];
    for await (const tag of tags) {
      if (isReferrerTag(tag)) referrers.push(tag);
      else yield { repository, tags: [tag] };
    }
    referrerTagCatalog(this.client).record(this.client.host, repository, referrers);
  }
}

/** The namespaces a name filter's first component spells out (undefined: it has wildcards, any may match). */
export function namespacesOf(pattern: string): string[] | undefined {
  return specificNames(pattern.split('/', 1)[0] ?? '');
}

/** Each item's name, as the items come. */
export async function* namesOf<T>(items: AsyncIterable<T>, name: (item: T) => string): AsyncGenerator<string> {
  for await (const item of items) yield name(item);
}
