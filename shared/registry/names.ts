import { ReplicatorError } from '../errors.js';

/**
 * The distribution spec's grammar for names that come from outside (a registry's listing, a
 * webhook, an API body, the config): checked where they enter, and again by the registry client
 * before any request is built with them. A name that fails is an error of that name; nothing is
 * requested with it.
 */

/** `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 characters. */
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const MAX_REPOSITORY_LENGTH = 255;
/** `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** `algorithm:hex`, for the algorithms registries use. */
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_REPOSITORY_LENGTH && REPOSITORY.test(name);
}

export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

export function isDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

/**
 * A name from outside, safe to print: JSON-escaped (control characters, quotes, newlines) and cut
 * to 100 characters, so a hostile name cannot forge log lines or flood a message.
 */
export function showName(name: string): string {
  const cut = name.length > 100 ? `${name.slice(0, 100)}...` : name;
  return JSON.stringify(cut);
}

/** A name that breaks the distribution grammar. Never retried. */
export class InvalidNameError extends ReplicatorError {
  override name = 'InvalidNameError';
  constructor(
    readonly kind: 'repository' | 'tag' | 'digest' | 'reference',
    readonly value: string,
    where?: string,
  ) {
    super('INVALID_NAME', `${where ? `${where}: ` : ''}invalid ${kind} name ${showName(value)}${HINTS[kind]}`);
  }
}

const HINTS: Record<InvalidNameError['kind'], string> = {
  repository: ' (lowercase components [a-z0-9] joined by ".", "_", "__" or "-", separated by "/", at most 255 characters)',
  tag: ' (must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127})',
  digest: ' (must be sha256:<64 hex> or sha512:<128 hex>)',
  reference: ' (must be a tag or a digest)',
};

export function checkRepository(name: string, where?: string): string {
  if (!isRepositoryName(name)) throw new InvalidNameError('repository', name, where);
  return name;
}

export function checkTag(tag: string, where?: string): string {
  if (!isTag(tag)) throw new InvalidNameError('tag', tag, where);
  return tag;
}

export function checkDigest(digest: string, where?: string): string {
  if (!isDigest(digest)) throw new InvalidNameError('digest', digest, where);
  return digest;
}

/** A manifest reference: a tag or a digest. */
export function checkReference(reference: string, where?: string): string {
  if (!isTag(reference) && !isDigest(reference)) throw new InvalidNameError('reference', reference, where);
  return reference;
}
