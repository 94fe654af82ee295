import type { RegistryClient } from '../registry/client.js';
import { isTag } from '../registry/names.js';
import { PageWalk } from '../registry/pagination.js';

/**
 * Tags that name another manifest by its digest, the conventions referrers live under when a
 * registry has no referrers API: the OCI referrers tag schema (`sha256-<hex>`, an index of the
 * subject's referrers) and cosign's signatures, attestations and SBOMs (`sha256-<hex>.sig`,
 * `.att`, `.sbom`). They follow their subjects: never listed as artifacts of their own, never
 * matched by a tag filter, never drift, copied with the subject they name. Every tag starting
 * `sha256-` (or `sha512-`) is one; those whose hex is a whole digest follow that subject.
 */
export function isReferrerTag(tag: string): boolean {
  return tag.startsWith('sha256-') || tag.startsWith('sha512-');
}

/** `<alg>-<64 hex>[.<suffix>]`: the subject's digest prefix (`alg:hex`) and the suffix, when the tag names one. */
const NAMED = /^(sha256|sha512)-([a-f0-9]{64})(?:\.([A-Za-z0-9_][A-Za-z0-9_.-]*))?$/;

/** What a referrer tag says: the subject it names (`sha256:<hex>`, the first 64 hex of a sha512) and its suffix (none: the tag schema's index). */
export function parseReferrerTag(tag: string): { subject: string; suffix: string | undefined } | undefined {
  const m = NAMED.exec(tag);
  if (!m || !isTag(tag)) return undefined;
  return { subject: `${m[1]}:${m[2]}`, suffix: m[3] };
}

/** The key a subject digest has among referrer tags (a sha512 is cut to 64 hex, as the tag schema does). */
function keyOf(digest: string): string {
  const [alg, hex = ''] = digest.split(':', 2);
  return `${alg}:${hex.slice(0, 64)}`;
}

/** The referrer tags of one repository, by the subject they name. */
export class ReferrerTags {
  private readonly bySubject = new Map<string, { schema: boolean; suffixed: string[] }>();

  constructor(tags: Iterable<string>) {
    for (const tag of tags) {
      const named = parseReferrerTag(tag);
      if (!named) continue;
      let entry = this.bySubject.get(named.subject);
      if (!entry) this.bySubject.set(named.subject, (entry = { schema: false, suffixed: [] }));
      if (named.suffix === undefined) entry.schema = true;
      else entry.suffixed.push(tag);
    }
  }

  /** Whether the subject has a referrers tag schema index (`sha256-<hex>`). */
  hasIndex(subject: string): boolean {
    return this.bySubject.get(keyOf(subject))?.schema === true;
  }

  /** Its cosign-style tags (`sha256-<hex>.sig`, `.att`, `.sbom`, ...), sorted. */
  suffixed(subject: string): string[] {
    return [...(this.bySubject.get(keyOf(subject))?.suffixed ?? [])].sort();
  }

  /** Subjects named by at least one tag. */
  get size(): number {
    return this.bySubject.size;
  }
}

/**
 * The referrer tags of source repositories, per process: what a planner's listing saw (so finding
 * a subject's referrers costs no request on a registry without the referrers API), else listed
 * once through the registry protocol (`tags/list`, every page bounded by `limits.max_pages`) by
 * the first copy that needs them and shared with the copies after it. Entries live `ttlMs`; at
 * most `maxRepositories` are kept (the oldest go first).
 */
export class ReferrerTagCatalog {
  private readonly entries = new Map<string, { at: number; tags: Promise<ReferrerTags> }>();

  constructor(
    private readonly opts: { ttlMs?: number; maxRepositories?: number; now?: () => number } = {},
  ) {}

  private get ttl(): number {
    return this.opts.ttlMs ?? 5 * 60_000;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A listing read every tag of `repository` at `host`: these are its referrer tags. */
  record(host: string, repository: string, tags: Iterable<string>): void {
    this.put(`${host}/${repository}`, Promise.resolve(new ReferrerTags(tags)));
  }

  /** The referrer tags of `repository`: as listed lately in this process, else listed now. */
  get(client: RegistryClient, repository: string, signal?: AbortSignal): Promise<ReferrerTags> {
    const key = `${client.host}/${repository}`;
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.ttl) return hit.tags;
    const listed = listReferrerTags(client, repository, signal);
    this.put(key, listed);
    listed.catch(() => {
      if (this.entries.get(key)?.tags === listed) this.entries.delete(key);
    });
    return listed;
  }

  private put(key: string, tags: Promise<ReferrerTags>): void {
    this.entries.delete(key);
    this.entries.set(key, { at: this.now(), tags });
    const max = this.opts.maxRepositories ?? 1000;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= max) break;
      this.entries.delete(oldest);
    }
  }
}

const catalogs = new WeakMap<RegistryClient, ReferrerTagCatalog>();

/**
 * The catalog of referrer tags of the registry `client` reaches, one per client for the process:
 * every lister of that registry (the registry protocol, a provider's API) records into it, and
 * every rule whose source it is reads from it.
 */
export function referrerTagCatalog(client: RegistryClient): ReferrerTagCatalog {
  let catalog = catalogs.get(client);
  if (!catalog) catalogs.set(client, (catalog = new ReferrerTagCatalog()));
  return catalog;
}

/** Every referrer tag of a repository, from its `tags/list` (bounded by `limits.max_pages`). */
export async function listReferrerTags(client: RegistryClient, repository: string, signal?: AbortSignal): Promise<ReferrerTags> {
  const walk = new PageWalk(client.host, `${repository} tags`, client.limits.maxPages);
  const found: string[] = [];
  let next: URL | undefined;
  do {
    const page = await client.tagsPage(repository, next, 1000, signal);
    next = walk.next(page.url, page.next);
    for (const tag of page.items) if (isReferrerTag(tag)) found.push(tag);
  } while (next);
  return new ReferrerTags(found);
}
