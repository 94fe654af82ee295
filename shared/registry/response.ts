import { ReplicatorError } from '../errors.js';
import { redactUrl } from './errors.js';
import { header, type HttpResponse } from './http.js';

/** Reading what a registry's answer names, the same way everywhere: the next page (`Link`), URLs it points at. */

/** The `rel="next"` target of a `Link` header, resolved against the request URL. */
export function nextLink(res: HttpResponse): URL | undefined {
  const link = header(res.headers, 'link');
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return registryUrl(m[1]!, res, 'Link');
  }
  return undefined;
}

/**
 * A URL a registry names (`Link`, upload `Location`), resolved against the request's: http(s)
 * only, else INVALID_RESPONSE. It may be on another origin: `send` then sends no credentials.
 */
export function registryUrl(text: string, res: HttpResponse, what: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text, res.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new ReplicatorError('INVALID_RESPONSE', `${redactUrl(res.url)}: the registry's ${what} is not an http(s) URL`);
  }
  return url;
}
