/** Manifest media types the copier understands. */
export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  OCI_NONDISTRIBUTABLE_PREFIX: 'application/vnd.oci.image.layer.nondistributable.',
} as const;

/** The `Accept` header for manifest requests: every type we can copy. */
export const MANIFEST_ACCEPT = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_LIST,
  MediaType.DOCKER_MANIFEST,
].join(', ');

/** True for OCI indexes and Docker manifest lists. */
export function isIndex(mediaType: string): boolean {
  return mediaType === MediaType.OCI_INDEX || mediaType === MediaType.DOCKER_LIST;
}

/** True for single-image manifests (OCI or Docker schema 2). */
export function isImageManifest(mediaType: string): boolean {
  return mediaType === MediaType.OCI_MANIFEST || mediaType === MediaType.DOCKER_MANIFEST;
}

/** True for media types the copier can push as manifests. */
export function isSupportedManifest(mediaType: string): boolean {
  return isIndex(mediaType) || isImageManifest(mediaType);
}

/**
 * Layers that registries must not (and usually cannot) store: Windows base layers and OCI
 * non-distributable layers with `urls`. They are referenced, never copied (as skopeo and crane do).
 */
export function isForeignLayer(mediaType: string, urls: unknown): boolean {
  return (
    Array.isArray(urls) &&
    urls.length > 0 &&
    (mediaType === MediaType.DOCKER_FOREIGN_LAYER || mediaType.startsWith(MediaType.OCI_NONDISTRIBUTABLE_PREFIX))
  );
}
