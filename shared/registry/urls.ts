import { checkRepository } from './names.js';

/**
 * Request URLs built from names, one path segment at a time: each segment percent-encoded, so a
 * name can never add a segment, climb with `..`, or start a query. Names are validated before
 * they get here (names.ts); the encoding is the second line of defence, not the first.
 */

/**
 * One path segment, percent-encoded. `:` stays as is (a path character in RFC 3986, and the
 * separator of `sha256:<hex>` that registries route on).
 */
export function pathSegment(segment: string): string {
  if (segment === '' || segment === '.' || segment === '..') throw new Error(`refusing path segment ${JSON.stringify(segment)}`);
  return encodeURIComponent(segment).replace(/%3A/gi, ':');
}

/** `segments` under `base`'s path (which ends with `/`), each one encoded; no query. */
export function urlUnder(base: URL, segments: readonly string[], trailingSlash = false): URL {
  const url = new URL(base);
  const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  url.pathname = `${prefix}${segments.map(pathSegment).join('/')}${trailingSlash ? '/' : ''}`;
  url.search = '';
  url.hash = '';
  return url;
}

/**
 * `/v2/<repository>/<rest...>` at a registry's origin: the repository checked against the
 * distribution grammar and encoded per component, each other piece encoded as one segment
 * (`v2Url(origin, 'library/nginx', 'manifests', '1.27')`). `trailingSlash` for
 * `/blobs/uploads/`.
 */
export function v2Url(origin: URL, repository: string, rest: readonly string[], trailingSlash = false): URL {
  checkRepository(repository);
  const segments = [...repository.split('/'), ...rest];
  if (origin.username || origin.password) return urlUnder(new URL('/v2/', origin), segments, trailingSlash);
  // Every request builds one: a single parse of the finished string, not four (the same URL).
  return new URL(`${origin.origin}/v2/${segments.map(pathSegment).join('/')}${trailingSlash ? '/' : ''}`);
}
