import { UsageError } from '../errors.js';

/** An image reference split the way Docker does it. */
export interface ImageReference {
  /** Registry as written (`docker.io`, `127.0.0.1:5000`, `harbor.example.com`). */
  registry: string;
  /** Repository path inside the registry (`library/nginx`). */
  repository: string;
  /** Tag, when one was given (or defaulted). */
  tag?: string;
  /** Digest, when one was given; it wins over the tag for what is copied. */
  digest?: string;
}

/** Docker Hub's name in references, and the host its API actually lives on. */
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;

/**
 * Parses `[docker://][host[:port]/]path[:tag][@digest]` with Docker's rules: the first component
 * is a registry host when it contains `.` or `:` or is `localhost`, otherwise the name is on
 * Docker Hub (where a one-part name gets `library/`). `defaultTag` applies when neither a tag nor
 * a digest is present; pass `undefined` to keep "no tag" visible to the caller.
 */
export function parseReference(input: string, opts: { defaultTag?: string | undefined } = { defaultTag: 'latest' }): ImageReference {
  let rest = input.trim();
  if (rest.startsWith('docker://')) rest = rest.slice('docker://'.length);
  if (rest.includes('://')) {
    throw new UsageError(`invalid reference "${input}": only docker:// references are supported`);
  }
  if (!rest) throw new UsageError('invalid reference "": empty');

  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(digest, input);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new UsageError(`invalid reference "${input}": tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    }
  }

  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');

  const repository = parts.join('/');
  if (!repository) throw new UsageError(`invalid reference "${input}": no repository`);
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      const hint = part.toLowerCase() !== part ? ' (repository names must be lowercase)' : '';
      throw new UsageError(`invalid reference "${input}": bad repository component "${part}"${hint}`);
    }
  }
  if (repository.length > 255) throw new UsageError(`invalid reference "${input}": repository name longer than 255`);

  if (tag === undefined && digest === undefined && opts.defaultTag !== undefined) tag = opts.defaultTag;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Checks a digest string (`sha256:<64 hex>` for sha256, the spec's grammar otherwise). */
export function validateDigest(digest: string, context = digest): void {
  if (!DIGEST.test(digest)) throw new UsageError(`invalid digest "${digest}" in "${context}"`);
  const [alg, hex] = digest.split(':') as [string, string];
  if (alg === 'sha256' && !SHA256_HEX.test(hex)) {
    throw new UsageError(`invalid digest "${digest}" in "${context}": sha256 needs 64 lowercase hex digits`);
  }
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new UsageError(`unsupported digest algorithm "${alg}" in "${context}"`);
  }
}

/** What to ask the registry for: the digest when known, else the tag. */
export function referenceTarget(ref: ImageReference): string {
  const target = ref.digest ?? ref.tag;
  if (!target) throw new UsageError(`reference ${formatReference(ref)} has neither tag nor digest`);
  return target;
}

/** `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The host that serves the registry API for a reference's registry. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}
