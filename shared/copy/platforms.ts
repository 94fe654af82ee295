import { ReplicatorError } from '../errors.js';
import { remoteText } from '../registry/errors.js';
import { formatPlatform, Manifest, type Platform } from '../registry/manifest.js';
import type { SourceManifests } from './source-manifests.js';

/** True when `platform` is one of `wanted` (`os/arch`, or `os/arch/variant` to pin the variant). */
export function platformMatches(platform: Platform | undefined, wanted: readonly string[]): boolean {
  if (!platform) return false;
  return wanted.some((w) => {
    const [os, arch, variant] = w.split('/');
    return platform.os === os && platform.architecture === arch && (variant === undefined || platform.variant === variant);
  });
}

/**
 * An index narrowed to `platforms` (a rule's extension to Harbor): every child kept means the
 * index as received; one child means that image itself (the tag becomes single-platform); some
 * children means a new index of the same media type listing those children's descriptors exactly
 * as the original did (a new manifest with its own digest: registries refuse an index whose
 * children are missing, so the original cannot be pushed without them). Not an index: unchanged.
 */
export async function selectPlatforms(
  index: Manifest,
  platforms: readonly string[] | undefined,
  source: SourceManifests,
  what: string,
): Promise<Manifest> {
  if (!platforms || platforms.length === 0 || !index.isIndex) return index;
  // Within max_index_children before anything else is done with the registry's list.
  const children = source.children(index);
  const keep = index.children.filter((c) => platformMatches(c.platform, platforms));
  if (keep.length === index.children.length) return index;
  if (keep.length === 0) {
    // The registry's own strings: each escaped, a few of them.
    const have = [...new Set(children.map((c) => formatPlatform(c.platform)))];
    const shown = have.slice(0, 10).map((p) => remoteText(p, 60)).join(', ') + (have.length > 10 ? ', ...' : '');
    throw new ReplicatorError('PLATFORM_UNAVAILABLE', `${what}: no platform of [${platforms.join(', ')}] in the index (it has ${shown})`);
  }
  if (new Set(keep.map((k) => k.digest)).size === 1) return source.get(keep[0]!.digest);
  // Re-emit the kept descriptors as the original JSON has them (unknown fields included).
  const raw = JSON.parse(index.bytes.toString('utf8')) as { manifests: Array<{ digest: string }> } & Record<string, unknown>;
  const digests = new Set(keep.map((k) => k.digest));
  const body = { ...raw, manifests: raw.manifests.filter((m) => digests.has(m.digest)) };
  return Manifest.parse(Buffer.from(JSON.stringify(body)), index.mediaType, `${what} (platforms ${platforms.join(',')})`);
}
