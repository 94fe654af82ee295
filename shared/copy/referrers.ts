import pLimit from 'p-limit';
import { isAbort, ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { isTransient } from '../registry/errors.js';
import { DEFAULT_LIMITS, type Limits } from '../registry/limits.js';
import type { Manifest } from '../registry/manifest.js';
import { isIndex } from '../registry/media-types.js';
import { isDigest, showName } from '../registry/names.js';
import { indexesReferrers, listReferrers, parseReferrersList, referrersTagOf, type ReferrerDescriptor } from '../registry/referrers-api.js';
import type { Accessory } from '../sources/source.js';
import type { ReferrerTags } from '../sources/referrer-tags.js';
import { BlobLocations } from './blob-locations.js';
import { copyImage, type CopyResult, type ImageCopyOptions } from './image-copy.js';
import type { KeyedLock } from './keyed-lock.js';
import { addToReferrersIndex } from './referrer-index.js';
import { SourceManifests } from './source-manifests.js';

/**
 * Referrers follow their subject: for every manifest of a copied image (the top one and, for an
 * index, each child), the manifests that refer to it (signatures, SBOMs, attestations) are found
 * at the source and copied to the destination, bytes unchanged, and so on recursively (the
 * signature of an SBOM is a referrer of the SBOM). Found, for each subject, through:
 *
 * - the OCI 1.1 referrers API, where the source serves it (probed once per registry);
 * - else the referrers tag schema (an index under `sha256-<hex>`), when the source repository's
 *   tag list (already fetched: sources/referrer-tags.ts) has that tag;
 * - cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`), copied as tags;
 * - for a Harbor source, the top subject's accessories from Harbor's API.
 *
 * At a destination that does not index referrers itself (no `OCI-Subject` answer, no referrers
 * API), each subject's `sha256-<hex>` index is merged (referrer-index.ts). Every loop is bounded:
 * at most `limits.max_index_children` referrers in all, `limits.max_index_depth` levels of
 * referrers of referrers, pages and bytes as any listing and manifest.
 */

/** Referrers of one copy: copied now, already at the destination, failed. */
export interface ReferrerCounts {
  copied: number;
  in_sync: number;
  failed: number;
}

/** How a referrer was found. */
export type ReferrerVia = 'referrers-api' | 'tag-schema' | 'tag' | 'harbor-accessory';

/** A referrer this copy pushed to the destination (what a deletion of the subject may remove). */
export interface CopiedReferrer {
  digest: string;
  /** The manifest it refers to (the subject, one of its children, or another referrer). */
  subject: string;
  /** 0: a referrer of the copied image (or its children); 1: of such a referrer; ... */
  depth: number;
  /** The destination tag it was pushed under (cosign's convention), if any. */
  tag?: string | undefined;
  /** Listed by this copy in the destination's `sha256-<hex>` index. */
  indexed?: boolean | undefined;
}

/** Progress: one referrer handled. */
export interface ReferrerEvent {
  kind: 'referrer';
  subject: string;
  depth: number;
  digest: string | undefined;
  tag?: string | undefined;
  artifactType: string | undefined;
  via: ReferrerVia;
  status: 'copied' | 'in_sync' | 'kept' | 'failed';
  error?: string | undefined;
}

/** Where referrers come from and go, and how they are copied. */
export interface ReferrerOptions {
  source: { client: RegistryClient; repository: string };
  destination: { client: RegistryClient; repository: string };
  /** The source repository's referrer tags (asked once, lazily). */
  tags: () => Promise<ReferrerTags>;
  /** Harbor's accessories of the top subject. */
  accessories?: readonly Accessory[] | undefined;
  /** Serializes updates of one destination `sha256-<hex>` index. */
  lock: KeyedLock;
  /**
   * Whether a destination tag (cosign's) at another digest may be replaced: by default only when
   * `ours` says the replicator put that digest there; a foreign signature manifest is kept.
   */
  ours?: ((digest: string) => boolean) | undefined;
  limits?: Limits | undefined;
  /**
   * How each referrer's manifest and blobs are copied (override, platforms and tag checks do not
   * apply; referrers are small and never handed over: a deadline cuts them off, retried later).
   */
  image?: Pick<ImageCopyOptions, 'chunkSize' | 'concurrency' | 'bytesPerSecond' | 'locations'> | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: ReferrerEvent) => void) | undefined;
}

/** What following the referrers did. */
export interface ReferrersOutcome {
  counts: ReferrerCounts;
  /** Referrers pushed by this copy (for the record a deletion reads). */
  copied: CopiedReferrer[];
  /** Referrers (or lookups) that failed: a digest, tag or lookup, and why. */
  failures: Array<{ what: string; error: unknown }>;
  /** Destination cosign tags left at another digest (foreign). */
  kept: string[];
}

/** A referrer found for one subject, before it is copied. */
interface Candidate {
  via: ReferrerVia;
  /** The descriptor (API, tag schema index), or just the digest (accessory). */
  digest?: string | undefined;
  descriptor?: ReferrerDescriptor | undefined;
  /** Copied under this tag (cosign's convention; a cosign accessory). */
  tag?: string | undefined;
  /** Harbor's accessory type. */
  accessoryType?: string | undefined;
}

/** Referrers copied at once (each copies its blobs with the copy's own concurrency). */
const REFERRER_CONCURRENCY = 4;

/** Referrers that failed, named; the subject stays copied. Retried with the task when every cause may pass. */
export class ReferrerFailedError extends ReplicatorError {
  override name = 'ReferrerFailedError';
  readonly retryable: boolean;
  constructor(
    readonly subject: string,
    readonly outcome: ReferrersOutcome,
  ) {
    const shown = outcome.failures.slice(0, 3).map((f) => `${f.what}: ${describe(f.error)}`);
    const more = outcome.failures.length > 3 ? `; and ${outcome.failures.length - 3} more` : '';
    super('REFERRER_FAILED', `${outcome.failures.length} referrer(s) of ${subject} not copied (the image itself is): ${shown.join('; ')}${more}`);
    this.retryable = outcome.failures.every((f) => isTransient(f.error));
  }
}

function describe(err: unknown): string {
  if (err instanceof ReplicatorError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The digests of the image's manifests: the top one, and every child of an index (nested ones read, within the limits). */
async function treeOf(top: Manifest, opts: ReferrerOptions, limits: Limits): Promise<string[]> {
  const out = [top.digest];
  if (!top.isIndex) return out;
  const manifests = new SourceManifests(opts.source.client, opts.source.repository, limits, `${opts.source.client.host}/${opts.source.repository}@${top.digest}`, opts.signal);
  const seen = new Set(out);
  let level: Array<{ index: Manifest; depth: number }> = [{ index: top, depth: 0 }];
  while (level.length > 0) {
    const next: typeof level = [];
    for (const { index, depth } of level) {
      for (const child of manifests.children(index)) {
        if (seen.has(child.digest)) continue;
        seen.add(child.digest);
        out.push(child.digest);
        if (isIndex(child.mediaType)) {
          manifests.checkDepth(child.digest, depth + 1);
          const m = await manifests.get(child.digest);
          if (m.isIndex) next.push({ index: m, depth: depth + 1 });
        }
      }
    }
    level = next;
  }
  return out;
}

/**
 * Finds a subject's referrers at the source (see the module's comment). `sourceIndex`: the
 * source's own `sha256-<hex>` index, when that is where they came from.
 */
async function discover(subject: string, depth: number, opts: ReferrerOptions, tags: () => Promise<ReferrerTags>): Promise<{ candidates: Candidate[]; sourceIndex?: Manifest }> {
  const { client, repository } = opts.source;
  const candidates: Candidate[] = [];
  let sourceIndex: Manifest | undefined;
  let listed = await listReferrers(client, repository, subject, { signal: opts.signal });
  const known = await tags();
  if (listed === undefined && known.hasIndex(subject)) {
    const tag = referrersTagOf(subject);
    const index = await client.getManifest(repository, tag, opts.signal);
    if (!index.isIndex) throw new ReplicatorError('REFERRERS_INDEX_INVALID', `${client.host}/${repository}:${tag} is not an image index`);
    listed = parseReferrersList(index.bytes, `${client.host}/${repository}:${tag}`);
    sourceIndex = index;
  }
  const via: ReferrerVia = sourceIndex ? 'tag-schema' : 'referrers-api';
  const digests = new Set<string>();
  for (const d of listed ?? []) {
    if (digests.has(d.digest)) continue;
    digests.add(d.digest);
    candidates.push({ via, digest: d.digest, descriptor: d });
  }
  const tagged = new Set(known.suffixed(subject));
  for (const tag of tagged) candidates.push({ via: 'tag', tag });
  if (depth === 0) {
    for (const a of opts.accessories ?? []) {
      if (!isDigest(a.digest)) throw new ReplicatorError('INVALID_NAME', `Harbor listed an accessory with an invalid digest ${showName(a.digest)}`);
      // A cosign signature Harbor keeps as an accessory lives under its tag (`sha256-<hex>.sig`).
      const tag = a.type === 'signature.cosign' ? `${referrersTagOf(subject)}.sig` : undefined;
      // Found already through the API, the tag schema or its tag: once is enough.
      if (digests.has(a.digest) || (tag !== undefined && tagged.has(tag))) continue;
      digests.add(a.digest);
      candidates.push({ via: 'harbor-accessory', digest: a.digest, accessoryType: a.type, ...(tag ? { tag } : {}) });
    }
  }
  return { candidates, ...(sourceIndex ? { sourceIndex } : {}) };
}

/** The artifact type of a referrer as its listing or its manifest says. */
function artifactTypeOf(c: Candidate, m: Manifest | undefined): string | undefined {
  return c.descriptor?.artifactType ?? m?.artifactType;
}

/**
 * Copies the referrers of a copied image (its top manifest `top`, as received) to the
 * destination, recursively; see the module's comment. Failures do not stop the others: they are
 * returned, with the counts and what was pushed, for the caller to record and report
 * (ReferrerFailedError). A stop (the signal) is thrown as it is.
 */
export async function copyReferrers(top: Manifest, opts: ReferrerOptions): Promise<ReferrersOutcome> {
  const limits = opts.limits ?? opts.source.client.limits ?? DEFAULT_LIMITS;
  const out: ReferrersOutcome = { counts: { copied: 0, in_sync: 0, failed: 0 }, copied: [], failures: [], kept: [] };
  let tagsOnce: Promise<ReferrerTags> | undefined;
  const tags = () => (tagsOnce ??= opts.tags());
  const limit = pLimit(REFERRER_CONCURRENCY);
  // Referrers share blobs (the empty config above all): one upload of a blob into the repository
  // at a time, the others wait for it (docker-registry 2.8 fails a manifest PUT racing a second
  // upload of one of its blobs).
  if (!opts.image?.locations) opts = { ...opts, image: { ...opts.image, locations: new BlobLocations() } };
  /** Manifests whose referrers were looked for, and referrers handled: each once. */
  const visited = new Set<string>();
  const handled = new Set<string>();
  let budget = limits.maxIndexChildren;
  const fail = (what: string, error: unknown) => {
    if (isAbort(error) || opts.signal?.aborted) throw error;
    out.failures.push({ what, error });
    out.counts.failed += 1;
  };

  let level: Array<{ digest: string; depth: number }>;
  try {
    level = (await treeOf(top, opts, limits)).map((digest) => ({ digest, depth: 0 }));
  } catch (err) {
    fail(`the manifests of ${top.digest}`, err);
    return out;
  }
  while (level.length > 0) {
    const next: typeof level = [];
    await Promise.all(
      level.map(async ({ digest: subject, depth }) => {
        if (visited.has(subject)) return;
        visited.add(subject);
        let found: Awaited<ReturnType<typeof discover>>;
        try {
          found = await discover(subject, depth, opts, tags);
        } catch (err) {
          fail(`referrers of ${subject}`, err);
          return;
        }
        const toIndex: Array<{ descriptor: ReferrerDescriptor; counted: 'copied' | 'in_sync'; copied?: CopiedReferrer }> = [];
        await Promise.all(
          found.candidates.map((c) =>
            limit(async () => {
              if (c.digest && handled.has(c.digest)) return;
              if (c.digest) handled.add(c.digest);
              if (budget <= 0) {
                fail(c.tag ?? c.digest ?? 'a referrer', new ReplicatorError('MANIFEST_LIMIT', `more than ${limits.maxIndexChildren} referrers (limits.max_index_children)`));
                return;
              }
              budget -= 1;
              const event = (status: ReferrerEvent['status'], digest: string | undefined, artifactType: string | undefined, error?: unknown) =>
                opts.onEvent?.({ kind: 'referrer', subject, depth, digest, tag: c.tag, artifactType, via: c.via, status, ...(error !== undefined ? { error: describe(error) } : {}) });
              let result: CopyResult | 'kept';
              try {
                result = await copyOne(c, opts);
              } catch (err) {
                fail(c.tag ? `${c.tag}${c.digest ? ` (${c.digest})` : ''}` : c.digest!, err);
                event('failed', c.digest, c.descriptor?.artifactType, err);
                return;
              }
              if (result === 'kept') {
                out.kept.push(c.tag!);
                out.counts.in_sync += 1;
                event('kept', c.digest, c.descriptor?.artifactType);
                return;
              }
              const manifest = result.manifest;
              handled.add(result.digest);
              const counted = result.status === 'copied' ? 'copied' : 'in_sync';
              out.counts[counted] += 1;
              const record: CopiedReferrer | undefined = counted === 'copied' ? { digest: result.digest, subject, depth, ...(c.tag ? { tag: c.tag } : {}) } : undefined;
              if (record) out.copied.push(record);
              event(counted, result.digest, artifactTypeOf(c, manifest));
              // Listed by the source as a referrer of this subject (not a cosign tag): the destination's list gets it.
              if (c.via !== 'tag' && (c.descriptor || manifest?.subject?.digest === subject)) {
                const descriptor: ReferrerDescriptor = c.descriptor ?? {
                  mediaType: result.mediaType,
                  digest: result.digest,
                  size: manifest?.bytes.length ?? 0,
                  ...(manifest?.artifactType !== undefined ? { artifactType: manifest.artifactType } : {}),
                  ...(manifest?.annotations !== undefined ? { annotations: manifest.annotations } : {}),
                };
                toIndex.push({ descriptor, counted, ...(record ? { copied: record } : {}) });
              }
              if (depth + 1 <= limits.maxIndexDepth) next.push({ digest: result.digest, depth: depth + 1 });
            }),
          ),
        );
        if (toIndex.length === 0) return;
        try {
          if (await indexesReferrers(opts.destination.client, opts.destination.repository, subject, opts.signal)) return;
          const added = new Set(
            await addToReferrersIndex(
              opts.destination.client,
              opts.destination.repository,
              subject,
              toIndex.map((t) => t.descriptor),
              { lock: opts.lock, sourceIndex: found.sourceIndex, signal: opts.signal },
            ),
          );
          for (const t of toIndex) {
            if (!added.has(t.descriptor.digest)) continue;
            if (t.copied) t.copied.indexed = true;
            // Found at the destination but missing from its list: listing it was this copy's change.
            if (t.counted === 'in_sync') {
              out.counts.in_sync -= 1;
              out.counts.copied += 1;
            }
          }
        } catch (err) {
          fail(`${opts.destination.client.host}/${opts.destination.repository}:${referrersTagOf(subject)} (the referrers index)`, err);
        }
      }),
    );
    level = next;
  }
  return out;
}

/**
 * Copies one referrer: by digest (bytes unchanged, blobs first), or under its tag. A destination
 * tag at another digest that is not the replicator's (`ours`) is kept: a foreign signature
 * manifest is never replaced.
 */
async function copyOne(c: Candidate, opts: ReferrerOptions): Promise<CopyResult | 'kept'> {
  const src = opts.source;
  const dst = opts.destination;
  const image: ImageCopyOptions = { ...opts.image, signal: opts.signal };
  const at = (client: RegistryClient, repository: string, ref: { tag?: string | undefined; digest?: string | undefined }) => ({
    client,
    ref: { registry: client.host, repository, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) },
  });
  if (c.tag) {
    // By tag at the source when it is one (cosign's), else by digest (an accessory given its tag here).
    const from = c.via === 'tag' ? { tag: c.tag } : { digest: c.digest };
    const result = await copyImage(at(src.client, src.repository, from), at(dst.client, dst.repository, { tag: c.tag }), { ...image, override: false });
    if (result.status !== 'skipped') return result;
    const there = await dst.client.headManifest(dst.repository, c.tag, opts.signal);
    if (!there || !(opts.ours?.(there.digest) ?? false)) return 'kept';
    return copyImage(at(src.client, src.repository, from), at(dst.client, dst.repository, { tag: c.tag }), { ...image, override: true });
  }
  return copyImage(at(src.client, src.repository, { digest: c.digest }), at(dst.client, dst.repository, { digest: c.digest }), image);
}

/** A referrer as a dry run shows it, with its own referrers. */
export interface FoundReferrer {
  digest: string | undefined;
  tag?: string | undefined;
  artifactType: string | undefined;
  mediaType: string | undefined;
  via: ReferrerVia;
  /** At the destination already (by digest; a tag: at the same digest). */
  present: boolean;
  referrers: FoundReferrer[];
  error?: string | undefined;
}

/**
 * The referrers a copy of `top` would follow, as a tree under each subject (the top manifest and
 * each child of an index), with their artifact types and whether the destination has them
 * already; nothing is written. Bounded as copyReferrers is.
 */
export async function findReferrers(top: Manifest, opts: ReferrerOptions): Promise<Array<{ subject: string; referrers: FoundReferrer[] }>> {
  const limits = opts.limits ?? opts.source.client.limits ?? DEFAULT_LIMITS;
  let tagsOnce: Promise<ReferrerTags> | undefined;
  const tags = () => (tagsOnce ??= opts.tags());
  const visited = new Set<string>();
  let budget = limits.maxIndexChildren;
  const src = opts.source;
  const dst = opts.destination;

  const under = async (subject: string, depth: number): Promise<FoundReferrer[]> => {
    if (visited.has(subject) || depth > limits.maxIndexDepth) return [];
    visited.add(subject);
    const { candidates } = await discover(subject, depth, opts, tags);
    const found: FoundReferrer[] = [];
    for (const c of candidates) {
      if (budget-- <= 0) throw new ReplicatorError('MANIFEST_LIMIT', `more than ${limits.maxIndexChildren} referrers (limits.max_index_children)`);
      try {
        const m = c.via === 'tag' ? await src.client.getManifest(src.repository, c.tag!, opts.signal) : c.descriptor ? undefined : await src.client.getManifest(src.repository, c.digest!, opts.signal);
        const digest = m?.digest ?? c.digest!;
        if (found.some((f) => f.digest === digest)) continue;
        const there = await dst.client.headManifest(dst.repository, c.tag ?? digest, opts.signal);
        found.push({
          digest,
          ...(c.tag ? { tag: c.tag } : {}),
          artifactType: artifactTypeOf(c, m),
          mediaType: m?.mediaType ?? c.descriptor?.mediaType,
          via: c.via,
          present: there?.digest === digest,
          referrers: await under(digest, depth + 1),
        });
      } catch (err) {
        if (isAbort(err) || opts.signal?.aborted) throw err;
        found.push({ digest: c.digest, tag: c.tag, artifactType: c.descriptor?.artifactType, mediaType: c.descriptor?.mediaType, via: c.via, present: false, referrers: [], error: describe(err) });
      }
    }
    return found;
  };

  const out: Array<{ subject: string; referrers: FoundReferrer[] }> = [];
  for (const subject of await treeOf(top, opts, limits)) out.push({ subject, referrers: await under(subject, 0) });
  return out;
}

/** Zero counts. */
export function noReferrers(): ReferrerCounts {
  return { copied: 0, in_sync: 0, failed: 0 };
}
