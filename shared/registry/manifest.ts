import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { describeIssue } from '../util/schema.js';
import { DigestMismatchError, ReplicatorError } from '../errors.js';
import { remoteText } from './errors.js';
import { MediaType, isImageManifest, isIndex, isSupportedManifest } from './media-types.js';
import { isDigest, showName } from './names.js';

const platformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.optional(z.string()),
  'os.version': z.optional(z.string()),
});

const descriptorSchema = z.object({
  mediaType: z.string(),
  // A descriptor's digest becomes a request path (a child manifest, a blob): `algorithm:hex` only.
  digest: z.string().check(z.refine(isDigest, 'must be sha256:<64 hex> or sha512:<128 hex>')),
  size: z.int().check(z.nonnegative()),
  urls: z.optional(z.array(z.string())),
  platform: z.optional(platformSchema),
  artifactType: z.optional(z.string()),
  annotations: z.optional(z.record(z.string(), z.string())),
});

const manifestBodySchema = z.object({
  schemaVersion: z.number(),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  config: z.optional(descriptorSchema),
  layers: z.optional(z.array(descriptorSchema)),
  manifests: z.optional(z.array(descriptorSchema)),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});

/** A content descriptor: what a manifest says about a blob or a child manifest. */
export type Descriptor = z.infer<typeof descriptorSchema>;
/** A child's platform in an index. */
export type Platform = z.infer<typeof platformSchema>;

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Digest of `bytes` with the algorithm of `like` (sha256 or sha512). */
export function digestLike(like: string, bytes: Uint8Array): string {
  const alg = like.split(':', 1)[0] === 'sha512' ? 'sha512' : 'sha256';
  return `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
}

/**
 * A manifest exactly as the registry sent it: the bytes are kept and pushed unchanged, the
 * digest is of those bytes, and the parsed view is only read (never re-serialized).
 */
export class Manifest {
  private constructor(
    /** The bytes as received. */
    readonly bytes: Buffer,
    /** Digest of `bytes`. */
    readonly digest: string,
    /** Media type (from the body, else the Content-Type it was served with). */
    readonly mediaType: string,
    /** Children of an index (empty for an image). */
    readonly children: Descriptor[],
    /** Config and layers of an image (empty for an index). */
    readonly blobs: Descriptor[],
    /** What the OCI 1.1 referrer view says of it: `subject`, `artifactType`, annotations. */
    private readonly about: { subject?: Descriptor | undefined; artifactType?: string | undefined; annotations?: Record<string, string> | undefined } = {},
  ) {}

  /** The manifest this one refers to (OCI 1.1 `subject`: a signature, an SBOM, an attestation). */
  get subject(): Descriptor | undefined {
    return this.about.subject;
  }

  /**
   * Its artifact type as a referrers list shows it: `artifactType`, else the config's media type
   * (OCI image spec, "Guidelines for artifact usage"); undefined for an index without one.
   */
  get artifactType(): string | undefined {
    return this.about.artifactType ?? (this.isIndex ? undefined : this.blobs[0]?.mediaType);
  }

  /** The manifest's own annotations. */
  get annotations(): Record<string, string> | undefined {
    return this.about.annotations;
  }

  /**
   * Parses manifest bytes. `expectedDigest` (when the manifest was asked for by digest, or the
   * registry sent `Docker-Content-Digest`) is checked against the bytes.
   */
  static parse(bytes: Buffer, contentType: string | undefined, what: string, expectedDigest?: string): Manifest {
    const header = contentType?.split(';', 1)[0]?.trim();
    // Schema 1 before the digest check: its registry names it by the digest of the unsigned
    // payload, so the bytes never match it (checked against docker-registry 2.8).
    if (header === MediaType.DOCKER_SCHEMA1_SIGNED || header === MediaType.DOCKER_SCHEMA1 || looksLikeSchema1(bytes)) throw schema1Refused(what);
    const digest = expectedDigest ? digestLike(expectedDigest, bytes) : sha256Digest(bytes);
    if (expectedDigest && digest !== expectedDigest) throw new DigestMismatchError(expectedDigest, digest, what);

    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new ReplicatorError('MANIFEST_INVALID', `${what}: manifest is not JSON`, { cause: err });
    }
    const parsed = manifestBodySchema.safeParse(json);
    if (!parsed.success) {
      // The issue's path may hold the registry's own keys (annotations): escaped like its text.
      throw new ReplicatorError('MANIFEST_INVALID', `${what}: manifest ${remoteText(describeIssue(parsed.error))}`);
    }
    const body = parsed.data;
    let mediaType = body.mediaType ?? header;
    if (!mediaType || mediaType === 'application/json') {
      mediaType = body.manifests ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST;
    }
    if (body.schemaVersion === 1 || mediaType === MediaType.DOCKER_SCHEMA1_SIGNED || mediaType === MediaType.DOCKER_SCHEMA1) throw schema1Refused(what);
    if (!isSupportedManifest(mediaType)) {
      throw new ReplicatorError('MANIFEST_UNSUPPORTED', `${what}: unsupported manifest media type ${showName(mediaType)}`);
    }
    const about = { subject: body.subject, artifactType: body.artifactType, annotations: body.annotations };
    if (isIndex(mediaType)) {
      return new Manifest(bytes, digest, mediaType, body.manifests ?? [], [], about);
    }
    if (!body.config) throw new ReplicatorError('MANIFEST_INVALID', `${what}: image manifest has no config`);
    return new Manifest(bytes, digest, mediaType, [], [body.config, ...(body.layers ?? [])], about);
  }

  /** True for an OCI index or Docker manifest list. */
  get isIndex(): boolean {
    return isIndex(this.mediaType);
  }

  /** True for a single-image manifest. */
  get isImage(): boolean {
    return isImageManifest(this.mediaType);
  }
}

/**
 * Docker schema 1 is refused, and the message says why: its bytes carry a signature by the
 * registry's own key (docker-registry 2.8 signs it again when it serves it) and its digest is of
 * the unsigned payload, so it cannot be pushed unchanged with its digest kept; most registries
 * no longer accept it (docker-registry 2.8 only with compatibility.schema1.enabled).
 */
function schema1Refused(what: string): ReplicatorError {
  return new ReplicatorError(
    'MANIFEST_UNSUPPORTED',
    `${what}: Docker schema 1 manifests are not copied: deprecated since 2017 and refused by most registries, and their bytes carry the source registry's own signature, so no copy can keep their digest; push the image again with a current client (schema 2 or OCI)`,
  );
}

/** `"schemaVersion": 1` near the start of a manifest with `fsLayers` (schema 1 served as application/json). */
function looksLikeSchema1(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4096).toString('utf8');
  return /"schemaVersion"\s*:\s*1\s*[,}]/.test(head) && head.includes('"fsLayers"');
}

/** `os/arch[/variant]` of a platform, as users write it. */
export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
