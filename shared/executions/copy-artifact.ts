import type { PlanItem } from '../rules/plan.js';
import type { RegistryClient } from '../registry/client.js';
import { copyImage, type CopyResult, type ImageCopyOptions } from '../copy/image-copy.js';

/**
 * Copies one planned artifact: by its first tag (or its digest when untagged), then its other
 * tags, which cost a HEAD and a manifest PUT each since the content is there by then. The source
 * is read by digest when the plan knows it, so a tag moved since planning is not copied in its
 * place.
 */
export async function copyArtifact(
  item: PlanItem,
  clients: { source: RegistryClient; destination: RegistryClient },
  options: ImageCopyOptions & {
    /**
     * What each destination tag named when the artifact was planned, moments ago (undefined:
     * absent): that tag's copy does not HEAD it again.
     */
    destinationTags?: ReadonlyMap<string, string | undefined> | undefined;
  },
): Promise<CopyResult[]> {
  const { destinationTags, ...imageOptions } = options;
  const { source: s, destination: d } = item;
  const targets = d.tags.length > 0 ? d.tags.map((t, i) => ({ dst: t, src: s.tags[i] })) : [{ dst: undefined, src: undefined }];
  const results: CopyResult[] = [];
  for (const t of targets) {
    results.push(
      await copyImage(
        {
          client: clients.source,
          ref: { registry: s.host, repository: s.repository, ...(t.src ? { tag: t.src } : {}), ...(s.digest ? { digest: s.digest } : {}) },
        },
        {
          client: clients.destination,
          // Untagged: pushed by the digest of what is copied (which `platforms` may narrow).
          ref: { registry: d.host, repository: d.repository, ...(t.dst ? { tag: t.dst } : {}) },
        },
        {
          ...imageOptions,
          tagMustStillName: true,
          ...(t.dst !== undefined && destinationTags?.has(t.dst) ? { destinationSeen: { digest: destinationTags.get(t.dst) } } : {}),
        },
      ),
    );
  }
  return results;
}
