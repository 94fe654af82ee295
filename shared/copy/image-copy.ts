import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { StoppedError, throwIfStopped, UsageError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { Limits } from '../registry/limits.js';
import type { Descriptor, Manifest } from '../registry/manifest.js';
import { isForeignLayer, isIndex } from '../registry/media-types.js';
import { formatReference, referenceTarget, type ImageReference } from '../registry/reference.js';
import { prepareBlob, transferBlob } from './blob-copy.js';
import { BlobLocations } from './blob-locations.js';
import { HandedOverError, type Handover } from './handover.js';
import { emitter, type BlobOutcome, type CopyListener } from './progress.js';
import { selectPlatforms } from './platforms.js';
import { SourceManifests } from './source-manifests.js';
import { Throttle } from './throttle.js';

/** One side of a copy: a registry client and a reference in it. */
export interface ImageLocation {
  client: RegistryClient;
  ref: ImageReference;
}

/** How to copy one image. */
export interface ImageCopyOptions {
  /** Replace a destination tag that points at another digest (Harbor's `override`; default true). */
  override?: boolean;
  /** Chunked upload with this chunk size; undefined = one streamed PUT per blob. */
  chunkSize?: number | undefined;
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  /** Bandwidth cap of this copy in bytes per second (Harbor's `speed`). */
  bytesPerSecond?: number | undefined;
  /** Copy only these platforms of an index (`linux/amd64`, `linux/arm64/v8`): a rule's `platforms`. */
  platforms?: readonly string[] | undefined;
  /** Known blob locations at destinations, shared across copies of a process for mounts. */
  locations?: BlobLocations;
  signal?: AbortSignal | undefined;
  /**
   * A planned copy (a task): the source tag is asked again just before the destination tag is
   * pushed, and if it has moved the content goes by digest only (see `movedSourceTag`). Off for
   * `copy`, where `repo:tag@digest` asks for exactly that digest under that tag.
   */
  tagMustStillName?: boolean;
  /**
   * What the destination tag named moments ago (a planner's HEAD; `digest` undefined: absent):
   * used instead of asking again. Only with override on, where a tag changed since is replaced
   * anyway.
   */
  destinationSeen?: { digest: string | undefined } | undefined;
  /** Hand over before a deadline (chunked uploads are continued by a later run). */
  handover?: Handover | undefined;
  /** Bounds on the source's manifest tree; default: the source client's (the config's `limits:`). */
  limits?: Limits | undefined;
  onEvent?: CopyListener | undefined;
}

/** What a copy did. */
export interface CopyResult {
  /** `copied`; `in_sync` (destination already had this digest); `skipped` (override off). */
  status: 'copied' | 'in_sync' | 'skipped';
  source: string;
  destination: string;
  /** Digest of the (top) manifest copied. */
  digest: string;
  mediaType: string;
  /** Bytes uploaded to the destination: blobs and manifests. */
  bytes: number;
  blobs: Record<BlobOutcome, number>;
  manifests: { pushed: number; present: number };
  seconds: number;
  /** Why nothing was copied, for `skipped`. */
  reason?: string;
  /**
   * The source tag moved (to `by`; null: deleted) after the copy was planned: the planned content
   * was pushed by digest, and the destination tag left alone.
   */
  superseded?: { tag: string; by: string | null };
  /** The top manifest copied (or found in sync), as received: what its referrers are found for. */
  manifest?: Manifest;
}

/** Blobs up to this size are copied outside the transfer slots. */
const SMALL_BLOB = 512 * 1024;

interface Plan {
  /**
   * Manifests to push, each once, with the reference to push it under and its height in the tree
   * (0 for an image, 1 + its highest child for an index): lower heights are pushed first, so a
   * manifest always comes after every child it names.
   */
  pushes: Array<{ manifest: Manifest; reference: string; height: number }>;
  blobs: Map<string, Descriptor>;
  /** Blobs known to be at the destination without asking (reported as skipped). */
  known: Descriptor[];
  present: number;
}

/**
 * Copies one image (a tag or a digest) from `src` to `dst`, Harbor's way: an equal digest at
 * the destination is in sync; a different one is skipped unless `override`; an index copies every
 * child by digest. All blobs first (concurrently, bounded), then manifests children-first, so a
 * copy that fails leaves no manifest behind. Manifest bytes are pushed exactly as received.
 */
export async function copyImage(src: ImageLocation, dst: ImageLocation, options: ImageCopyOptions = {}): Promise<CopyResult> {
  const started = performance.now();
  const emit = emitter(options.onEvent);
  const signal = options.signal;
  const source = formatReference(src.ref);
  const destination = formatReference(dst.ref);
  options.handover?.throwIfRequested();

  // The destination tag is known up front (usually): ask both registries at once, unless the
  // planner has just asked the destination (override on).
  const early = dst.ref.tag ?? dst.ref.digest;
  const seen = dst.ref.tag !== undefined && options.override !== false ? options.destinationSeen : undefined;
  const manifests = new SourceManifests(src.client, src.ref.repository, options.limits ?? src.client.limits, source, signal);
  const [fetched, earlyHead] = await Promise.all([
    manifests.get(referenceTarget(src.ref)),
    seen ? (seen.digest ? { digest: seen.digest, mediaType: '', size: 0 } : undefined) : early ? dst.client.headManifest(dst.ref.repository, early, signal) : undefined,
  ]);
  const top = await selectPlatforms(fetched, options.platforms, manifests, source);
  if (dst.ref.digest && dst.ref.digest !== top.digest) {
    throw new UsageError(`destination ${destination} names digest ${dst.ref.digest} but the source is ${top.digest}`);
  }
  const dstTarget = dst.ref.tag ?? top.digest;
  const result = (status: CopyResult['status'], extra: Partial<CopyResult> = {}): CopyResult => ({
    status,
    source,
    destination,
    digest: top.digest,
    mediaType: top.mediaType,
    bytes: 0,
    blobs: { copied: 0, skipped: 0, mounted: 0 },
    manifests: { pushed: 0, present: 0 },
    seconds: (performance.now() - started) / 1000,
    manifest: top,
    ...extra,
  });

  const locations = options.locations ?? new BlobLocations();
  const existing = early ? earlyHead : await dst.client.headManifest(dst.ref.repository, dstTarget, signal);
  emit({ kind: 'resolved', source, digest: top.digest, mediaType: top.mediaType, destination, destinationDigest: existing?.digest });
  if (existing?.digest === top.digest) {
    locations.addManifest(dst.client.host, dst.ref.repository, top.digest);
    return result('in_sync', { manifests: { pushed: 0, present: 1 } });
  }
  if (existing && options.override === false) {
    return result('skipped', {
      reason: `destination has ${existing.digest} and override is off`,
    });
  }

  // Another tag of an image this process has just pushed into this repository (the tags of one
  // artifact, or of one image listed under many tags): everything it names is there already, so
  // only its manifest is pushed under this tag, with nothing asked about its blobs or children.
  const pushedBefore = locations.hasManifest(dst.client.host, dst.ref.repository, top.digest);
  const plan = pushedBefore ? knownPresent(manifests, top, dstTarget) : await planCopy(manifests, dst, top, dstTarget, options);
  let planBytes = 0;
  for (const b of plan.blobs.values()) planBytes += b.size;
  for (const b of plan.known) planBytes += b.size;
  emit({
    kind: 'plan',
    digest: top.digest,
    mediaType: top.mediaType,
    manifests: plan.pushes.length,
    blobs: plan.blobs.size + plan.known.length,
    bytes: planBytes,
  });

  const counts: Record<BlobOutcome, number> = { copied: 0, skipped: 0, mounted: 0 };
  let bytes = 0;
  const concurrency = options.concurrency ?? 4;
  // Two stages: HEAD/mount/POST run up to one window ahead of the transfers, so a transfer
  // slot that frees is refilled at once (round trips to a busy registry cost tens of ms).
  const prepareLimit = pLimit(concurrency * 2);
  const transferLimit = pLimit(concurrency);
  const throttle = options.bytesPerSecond ? new Throttle(options.bytesPerSecond) : undefined;
  const sameRegistry = src.client.host === dst.client.host;
  // Our own signal, aborted by the caller's or by a blob failing for good. Linked by hand and
  // unlinked at the end: AbortSignal.any on a long-lived parent keeps every child alive (Node 20).
  const abort = new AbortController();
  const linked = abort.signal;
  setMaxListeners(0, linked); // one listener per request in flight
  const forward = () => abort.abort(signal?.reason);
  if (signal?.aborted) forward();
  signal?.addEventListener('abort', forward, { once: true });

  const copyOne = (desc: Descriptor) =>
    prepareLimit(async () => {
      const source = { client: src.client, repository: src.ref.repository, digest: desc.digest, size: desc.size };
      const target = { client: dst.client, repository: dst.ref.repository };
      const outcome = await locations.once(
        dst.client.host,
        dst.ref.repository,
        desc.digest,
        async (): Promise<BlobOutcome> => {
          const mountFrom = [...(sameRegistry ? [src.ref.repository] : []), ...locations.get(dst.client.host, desc.digest)];
          const handover = options.handover;
          const prepared = await prepareBlob(source, target, { mountFrom, signal: linked, handover });
          if (typeof prepared === 'string') return prepared;
          const transfer = () => transferBlob(source, target, prepared, { chunkSize: options.chunkSize, throttle, signal: linked, handover, emit });
          // Small blobs (configs) are round trips, not bandwidth: they do not wait for a slot.
          // Large ones hold a slot of this copy and of both registries' max_concurrency.
          await (desc.size <= SMALL_BLOB ? transfer() : transferLimit(() => dst.client.transfers(() => src.client.transfers(transfer))));
          bytes += desc.size;
          return 'copied';
        },
        'skipped',
      );
      counts[outcome] += 1;
      locations.add(dst.client.host, desc.digest, dst.ref.repository);
      emit({ kind: 'blob-done', digest: desc.digest, size: desc.size, outcome });
    });

  // Largest first: the big transfers start at once, small configs fill in behind them. The
  // first blob that fails for good stops the others at their next chunk (each cancels its
  // upload session), and the copy returns once all of them have wound down. A handover is not
  // a failure: each blob reaches its own chunk boundary and records where it is.
  let failure: unknown;
  let handedOver = false;
  const blobs = [...plan.blobs.values()].sort((a, b) => b.size - a.size);
  for (const desc of plan.known) {
    counts.skipped += 1;
    emit({ kind: 'blob-done', digest: desc.digest, size: desc.size, outcome: 'skipped' });
  }
  await Promise.allSettled(
    blobs.map((desc) =>
      copyOne(desc).catch((err: unknown) => {
        if (err instanceof HandedOverError) {
          handedOver = true;
          return;
        }
        if (failure === undefined) {
          failure = err;
          abort.abort(err);
        }
      }),
    ),
  );
  signal?.removeEventListener('abort', forward);
  if (failure !== undefined) throw signal?.aborted ? new StoppedError('stopped', { cause: failure }) : failure;
  if (handedOver) throw new HandedOverError(options.handover?.checkpoints() ?? []);

  // A tag never goes backwards: when the source tag has moved (or gone) since the digest was
  // planned, the planned content is pushed by digest only and the tag is left to the newer
  // content's own copy (its webhook, or the next run).
  const superseded = options.tagMustStillName ? await movedSourceTag(src, dst, signal) : undefined;
  const topReference = (reference: string) => (superseded && reference === dstTarget ? top.digest : reference);

  // Children before parents: lowest height first, manifests of one height in parallel.
  for (let height = 0; height <= Math.max(...plan.pushes.map((p) => p.height)); height++) {
    throwIfStopped(signal);
    await Promise.all(
      plan.pushes
        .filter((p) => p.height === height)
        .map(async ({ manifest, reference: planned }) => {
          const reference = manifest === top ? topReference(planned) : planned;
          try {
            await dst.client.putManifest(dst.ref.repository, reference, manifest, signal);
          } catch (err) {
            // Something it names is gone after all (garbage collected): the task's next attempt
            // checks everything again.
            if (pushedBefore) locations.forgetManifest(dst.client.host, dst.ref.repository, manifest.digest);
            throw err;
          }
          locations.addManifest(dst.client.host, dst.ref.repository, manifest.digest);
          bytes += manifest.bytes.length;
          emit({ kind: 'manifest-pushed', reference, digest: manifest.digest, mediaType: manifest.mediaType });
        }),
    );
  }

  return result('copied', {
    bytes,
    blobs: counts,
    manifests: { pushed: plan.pushes.length, present: plan.present },
    ...(superseded ? { superseded } : {}),
  });
}

/**
 * Whether the source tag still names the digest the copy was planned with (asked just before
 * the tag is pushed): undefined when it does, or when nothing pins it (a copy by tag alone); else
 * the tag and what it names now (null: it is gone).
 */
async function movedSourceTag(src: ImageLocation, dst: ImageLocation, signal: AbortSignal | undefined): Promise<CopyResult['superseded']> {
  if (!src.ref.tag || !src.ref.digest || !dst.ref.tag) return undefined;
  const now = await src.client.headManifest(src.ref.repository, src.ref.tag, signal);
  if (now?.digest === src.ref.digest) return undefined;
  return { tag: dst.ref.tag, by: now?.digest ?? null };
}

/**
 * The plan of a manifest this process pushed into the destination repository moments ago: the
 * top manifest is pushed (under the new reference), and what a full plan would have found
 * present is reported so: an image's blobs as skipped, an index's children as present.
 */
function knownPresent(manifests: SourceManifests, top: Manifest, topReference: string): Plan {
  const known = new Map<string, Descriptor>();
  for (const blob of top.blobs) if (!isForeignLayer(blob.mediaType, blob.urls)) known.set(blob.digest, blob);
  const children = top.isIndex ? manifests.children(top).length : 0;
  return { pushes: [{ manifest: top, reference: topReference, height: 0 }], blobs: new Map(), known: [...known.values()], present: children };
}

/**
 * Walks the manifest tree: children of an index are fetched by digest, each distinct digest once
 * in the whole tree (children the destination already has are not descended into), within the
 * limits `manifests` enforces; blobs are collected once each, foreign layers left out.
 */
async function planCopy(
  manifests: SourceManifests,
  dst: ImageLocation,
  top: Manifest,
  topReference: string,
  options: ImageCopyOptions,
): Promise<Plan> {
  const plan: Plan = { pushes: [], blobs: new Map(), known: [], present: 0 };
  const limit = pLimit(options.concurrency ?? 4);
  /** Height of each child manifest met so far (-1: the destination has it, nothing to push). */
  const seen = new Map<string, Promise<number>>();
  const child = (digest: string, depth: number): Promise<number> => {
    let height = seen.get(digest);
    if (!height) {
      height = (async () => {
        // Only the requests hold a slot: a nested index must not wait on its own parent's slot.
        const m = await limit(async () => {
          if (await dst.client.headManifest(dst.ref.repository, digest, options.signal)) return undefined;
          return manifests.get(digest);
        });
        if (!m) {
          plan.present += 1;
          return -1;
        }
        return visit(m, digest, depth);
      })();
      seen.set(digest, height);
    }
    return height;
  };
  const visit = async (manifest: Manifest, reference: string, depth: number): Promise<number> => {
    let height = 0;
    if (manifest.isIndex) {
      manifests.checkDepth(manifest.digest, depth);
      const children = manifests.children(manifest);
      for (const c of children) if (isIndex(c.mediaType)) manifests.checkDepth(c.digest, depth + 1);
      const heights = await Promise.all(children.map((c) => child(c.digest, depth + 1)));
      height = 1 + Math.max(-1, ...heights);
    } else {
      for (const blob of manifest.blobs) {
        if (!isForeignLayer(blob.mediaType, blob.urls)) plan.blobs.set(blob.digest, blob);
      }
    }
    plan.pushes.push({ manifest, reference, height });
    return height;
  };
  await visit(top, topReference, 0);
  return plan;
}
