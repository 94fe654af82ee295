import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { Manifest } from '../registry/manifest.js';
import { MediaType } from '../registry/media-types.js';
import { referrersTagOf, type ReferrerDescriptor } from '../registry/referrers-api.js';
import type { KeyedLock } from './keyed-lock.js';

/**
 * A destination's referrers tag schema index (OCI distribution 1.1, "Referrers Tag Schema"): at a
 * registry without the referrers API, the referrers of a subject are listed by an image index
 * under the tag `sha256-<hex>`, maintained by the clients that push them. It is shared: other
 * tools add their own entries there. So every change reads the index, merges, and writes it back,
 * holding the subject's lock (two copies of one subject must not lose each other's entries), and
 * never drops an entry it did not add: this is the one place a manifest is serialized here.
 * The index it replaces stays in the repository untagged (a registry's garbage collection of
 * untagged manifests removes it).
 */

/** The lock key of a subject's referrers at a destination. */
export function referrersLockKey(client: RegistryClient, repository: string, subject: string): string {
  return `${client.host}/${repository}@${subject}`;
}

/** The index under the subject's tag, or undefined when there is none. */
async function currentIndex(client: RegistryClient, repository: string, tag: string, signal?: AbortSignal): Promise<Manifest | undefined> {
  let index: Manifest;
  try {
    index = await client.getManifest(repository, tag, signal);
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return undefined;
    throw err;
  }
  if (!index.isIndex) {
    throw new ReplicatorError('REFERRERS_INDEX_INVALID', `${client.host}/${repository}:${tag} is a ${index.mediaType}, not the image index of the referrers tag schema; left as it is`);
  }
  return index;
}

/** A descriptor as a referrers list holds it (nothing else of the source's entry is carried over). */
function entry(d: ReferrerDescriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}),
    ...(d.annotations !== undefined ? { annotations: d.annotations } : {}),
  };
}

/** The existing index's JSON with `manifests` replaced (its other fields kept as they were). */
function rewritten(existing: Manifest | undefined, manifests: unknown[]): Buffer {
  const base: Record<string, unknown> = existing ? (JSON.parse(existing.bytes.toString('utf8')) as Record<string, unknown>) : { schemaVersion: 2, mediaType: MediaType.OCI_INDEX };
  return Buffer.from(JSON.stringify({ ...base, manifests }));
}

/**
 * Adds `entries` (referrers of `subject` already pushed to the destination) to its `sha256-<hex>`
 * index, holding the subject's lock: entries already listed are left as they are, foreign ones
 * kept. When the destination has no index yet and `sourceIndex` (the source's own index) lists
 * exactly these entries, its bytes are pushed unchanged, so the tag's digest is the source's.
 * Returns the digests added (none: nothing was written).
 */
export async function addToReferrersIndex(
  client: RegistryClient,
  repository: string,
  subject: string,
  entries: readonly ReferrerDescriptor[],
  opts: { lock: KeyedLock; sourceIndex?: Manifest | undefined; signal?: AbortSignal | undefined },
): Promise<string[]> {
  if (entries.length === 0) return [];
  const tag = referrersTagOf(subject);
  const what = `${client.host}/${repository}:${tag}`;
  return opts.lock.run(
    referrersLockKey(client, repository, subject),
    async () => {
      const existing = await currentIndex(client, repository, tag, opts.signal);
      const listed = new Set(existing?.children.map((c) => c.digest));
      const missing = uniqueByDigest(entries).filter((e) => !listed.has(e.digest));
      if (missing.length === 0) return [];
      const total = listed.size + missing.length;
      if (total > client.limits.maxIndexChildren) {
        throw new ReplicatorError('MANIFEST_LIMIT', `${what}: ${total} referrers would exceed ${client.limits.maxIndexChildren} (limits.max_index_children)`);
      }
      const source = opts.sourceIndex;
      const sameAsSource =
        !existing && source !== undefined && source.children.length === missing.length && source.children.every((c) => missing.some((m) => m.digest === c.digest));
      const bytes = sameAsSource ? source.bytes : rewritten(existing, [...(existing ? rawManifests(existing) : []), ...missing.map(entry)]);
      await client.putManifest(repository, tag, Manifest.parse(bytes, MediaType.OCI_INDEX, what), opts.signal);
      return missing.map((m) => m.digest);
    },
    opts.signal,
  );
}

/**
 * Removes `digests` from the subject's `sha256-<hex>` index, holding its lock; every other entry
 * stays. An index left empty is deleted (its tag with it). Returns the digests removed.
 */
export async function removeFromReferrersIndex(
  client: RegistryClient,
  repository: string,
  subject: string,
  digests: readonly string[],
  opts: { lock: KeyedLock; signal?: AbortSignal | undefined },
): Promise<string[]> {
  if (digests.length === 0) return [];
  const tag = referrersTagOf(subject);
  const what = `${client.host}/${repository}:${tag}`;
  return opts.lock.run(
    referrersLockKey(client, repository, subject),
    async () => {
      const existing = await currentIndex(client, repository, tag, opts.signal);
      if (!existing) return [];
      const drop = new Set(digests);
      const raw = rawManifests(existing);
      const kept = raw.filter((m) => !drop.has(String((m as { digest?: unknown }).digest)));
      if (kept.length === raw.length) return [];
      const removed = existing.children.map((c) => c.digest).filter((d) => drop.has(d));
      if (kept.length === 0) {
        await client.deleteManifest(repository, existing.digest, opts.signal);
      } else {
        await client.putManifest(repository, tag, Manifest.parse(rewritten(existing, kept), MediaType.OCI_INDEX, what), opts.signal);
      }
      return [...new Set(removed)];
    },
    opts.signal,
  );
}

/** The index's `manifests` entries as it wrote them (unknown fields included). */
function rawManifests(index: Manifest): unknown[] {
  const body = JSON.parse(index.bytes.toString('utf8')) as { manifests?: unknown };
  return Array.isArray(body.manifests) ? body.manifests : [];
}

function uniqueByDigest(entries: readonly ReferrerDescriptor[]): ReferrerDescriptor[] {
  const seen = new Map<string, ReferrerDescriptor>();
  for (const e of entries) if (!seen.has(e.digest)) seen.set(e.digest, e);
  return [...seen.values()];
}
