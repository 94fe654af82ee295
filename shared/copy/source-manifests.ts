import { ReplicatorError } from '../errors.js';
import { MANIFEST_SIZE_LIMIT, type RegistryClient } from '../registry/client.js';
import type { Limits } from '../registry/limits.js';
import type { Descriptor, Manifest } from '../registry/manifest.js';

/**
 * The source's manifests of one copy, read within the config's `limits:`: at most
 * `max_manifest_bytes` for the whole tree (every level together), at most `max_index_children`
 * distinct children per index, at most `max_index_depth` levels of nested indexes. An index is
 * the registry's to write: 200 entries naming one child are one child, and a tree wider or
 * deeper than the limits is refused (MANIFEST_LIMIT, never retried) before it costs memory.
 */
export class SourceManifests {
  private used = 0;

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly limits: Limits,
    /** The copy's source, named in errors. */
    private readonly what: string,
    private readonly signal?: AbortSignal,
  ) {}

  /** GETs a manifest, its bytes counted against `max_manifest_bytes` (read no further than what is left). */
  async get(reference: string): Promise<Manifest> {
    const left = Math.max(0, this.limits.maxManifestBytes - this.used);
    let manifest: Manifest;
    try {
      manifest = await this.client.getManifest(this.repository, reference, this.signal, left);
    } catch (err) {
      // Cut short by what was left of the budget, not by the per-manifest bound.
      if (err instanceof ReplicatorError && err.code === 'RESPONSE_TOO_LARGE' && left < MANIFEST_SIZE_LIMIT) throw this.tooManyBytes();
      throw err;
    }
    this.used += manifest.bytes.length;
    // Reads run in parallel: one may have started with the same remainder as another.
    if (this.used > this.limits.maxManifestBytes) throw this.tooManyBytes();
    return manifest;
  }

  /** The distinct children of an index (first descriptor of each digest, in order). */
  children(index: Manifest): Descriptor[] {
    const byDigest = new Map<string, Descriptor>();
    for (const child of index.children) {
      if (byDigest.has(child.digest)) continue;
      if (byDigest.size >= this.limits.maxIndexChildren) {
        throw new ReplicatorError(
          'MANIFEST_LIMIT',
          `${this.what}: index ${index.digest} has more than ${this.limits.maxIndexChildren} distinct children (limits.max_index_children)`,
        );
      }
      byDigest.set(child.digest, child);
    }
    return [...byDigest.values()];
  }

  /**
   * Checks an index `depth` levels below the top manifest (the top is level 0): before it is
   * fetched when its descriptor says it is an index, and again once read (a descriptor may lie).
   */
  checkDepth(digest: string, depth: number): void {
    if (depth > this.limits.maxIndexDepth) {
      throw new ReplicatorError(
        'MANIFEST_LIMIT',
        `${this.what}: index ${digest} is nested ${depth} levels deep, more than ${this.limits.maxIndexDepth} (limits.max_index_depth)`,
      );
    }
  }

  private tooManyBytes(): ReplicatorError {
    return new ReplicatorError(
      'MANIFEST_LIMIT',
      `${this.what}: its manifests take more than ${this.limits.maxManifestBytes} bytes (limits.max_manifest_bytes)`,
    );
  }
}
