import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import { pullScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { closeBody, discard, header, type HttpResponse } from './http.js';
import { MediaType } from './media-types.js';
import { checkDigest, checkRepository, isDigest, showName } from './names.js';
import { PageWalk } from './pagination.js';
import { nextLink } from './response.js';
import { v2Url } from './urls.js';

/**
 * The OCI distribution spec 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`, "Listing
 * Referrers"): an image index of the descriptors of every manifest whose `subject` is the digest,
 * optionally filtered by `artifactType`, paginated with `Link`. A registry that does not serve it
 * answers 404 (the spec forbids a 404 from one that does), and clients then fall back to the
 * referrers tag schema (`sha256-<hex>`). What each registry answered is remembered per client:
 * the API is probed once per registry, and whether a destination indexes referrers itself is read
 * from its `OCI-Subject` answer to a manifest PUT.
 */

/** One entry of a referrers list: the referrer's descriptor, as the index lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

const descriptorSchema = z.object({
  mediaType: z.string(),
  digest: z.string().check(z.refine(isDigest, 'must be sha256:<64 hex> or sha512:<128 hex>')),
  size: z.int().check(z.nonnegative()),
  artifactType: z.optional(z.string()),
  annotations: z.optional(z.record(z.string(), z.string())),
});
const listSchema = z.object({ manifests: z.optional(z.nullable(z.array(descriptorSchema))) });

/** The page size asked of the referrers API, and the entries one subject may have (`limits.max_index_children`). */
const PAGE_LIMIT = 8 * 1024 * 1024;

/** Statuses of a registry that has no referrers API (go-containerregistry falls back on the same). */
const NOT_SERVED = new Set([404, 400, 405, 406, 501]);

/**
 * The referrers of `digest` in `repository` through the API: undefined when the registry does not
 * serve it (probed once per client; later calls answer undefined without a request). Every page
 * counts against `limits.max_pages` (a `Link` back to a page read is PAGINATION_LOOP) and the
 * entries against `limits.max_index_children` (MANIFEST_LIMIT). With `artifactType`, only those;
 * a registry that did not apply the filter (no `OCI-Filters-Applied`) is filtered here.
 */
export async function listReferrers(
  client: RegistryClient,
  repository: string,
  digest: string,
  opts: { artifactType?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<ReferrerDescriptor[] | undefined> {
  checkRepository(repository, `${client.host} referrers`);
  checkDigest(digest, `${client.host} referrers of ${repository}`);
  const s = client.referrerSupport;
  if (s.api && (await s.api) === false) return undefined;
  const what = `${client.host}/${repository}@${digest} referrers`;
  const walk = new PageWalk(client.host, `${repository}@${digest} referrers`, client.limits.maxPages);
  const out: ReferrerDescriptor[] = [];
  let next: URL | undefined;
  let first = true;
  let settle: ((served: boolean | undefined) => void) | undefined;
  if (!s.api) s.api = new Promise<boolean | undefined>((resolve) => (settle = resolve));
  try {
    do {
      const res = await client.request({
        method: 'GET',
        url: next ?? ((origin) => {
          const u = v2Url(origin, repository, ['referrers', digest]);
          if (opts.artifactType !== undefined) u.searchParams.set('artifactType', opts.artifactType);
          return u;
        }),
        headers: { accept: MediaType.OCI_INDEX },
        scopes: [pullScope(repository)],
        expect: first ? [200, ...NOT_SERVED] : [200],
        signal: opts.signal,
      });
      const type = header(res.headers, 'content-type')?.split(';', 1)[0]?.trim();
      if (first && (res.status !== 200 || (type !== MediaType.OCI_INDEX && type !== 'application/json'))) {
        // No API here: the referrers tag schema is the fallback (and a 200 that is not an index is not the API).
        await discard(res.body);
        settle?.(false);
        settle = undefined;
        return undefined;
      }
      if (first) {
        settle?.(true);
        settle = undefined;
      }
      first = false;
      const page = await readList(res, what);
      const filtered = opts.artifactType !== undefined && !/\bartifactType\b/i.test(header(res.headers, 'oci-filters-applied') ?? '');
      for (const d of page) {
        if (filtered && d.artifactType !== opts.artifactType) continue;
        if (out.length >= client.limits.maxIndexChildren) {
          throw new ReplicatorError('MANIFEST_LIMIT', `${what}: more than ${client.limits.maxIndexChildren} referrers (limits.max_index_children)`);
        }
        out.push(d);
      }
      next = walk.next(res.url, nextLink(res));
    } while (next);
    return out;
  } finally {
    // A failure before the first answer decides nothing: the next caller asks again.
    if (settle) {
      s.api = undefined;
      settle(undefined);
    }
  }
}

/**
 * Whether a destination indexes referrers itself: what its last `OCI-Subject` answer said, else
 * whether it serves the referrers API (asked once, for `subject` in `repository`).
 */
export async function indexesReferrers(client: RegistryClient, repository: string, subject: string, signal?: AbortSignal): Promise<boolean> {
  const s = client.referrerSupport;
  if (s.indexes !== undefined) return s.indexes;
  return (await listReferrers(client, repository, subject, { signal })) !== undefined;
}

/**
 * The referrers tag schema's tag for a subject digest: `<alg>-<ref>`, the digest's `:` made `-`
 * and its hex cut to 64 characters (OCI distribution 1.1, "Referrers Tag Schema").
 */
export function referrersTagOf(digest: string): string {
  const [alg, hex] = digest.split(':', 2) as [string, string];
  return `${alg}-${hex.slice(0, 64)}`;
}

/** The entries of a referrers index (the API's answer or a tag schema index), checked. */
export function parseReferrersList(bytes: Buffer | string, what: string): ReferrerDescriptor[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString());
  } catch {
    throw new ReplicatorError('INVALID_RESPONSE', `${what}: not JSON`);
  }
  const parsed = listSchema.safeParse(json);
  if (!parsed.success) throw new ReplicatorError('INVALID_RESPONSE', `${what}: not an image index of descriptors`);
  return (parsed.data.manifests ?? []).map((d) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}),
    ...(d.annotations !== undefined ? { annotations: d.annotations } : {}),
  }));
}

async function readList(res: HttpResponse, what: string): Promise<ReferrerDescriptor[]> {
  const declared = Number(header(res.headers, 'content-length') ?? NaN);
  if (declared > PAGE_LIMIT) {
    closeBody(res.body);
    throw new ReplicatorError('RESPONSE_TOO_LARGE', `${what}: ${declared} bytes exceeds ${PAGE_LIMIT}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > PAGE_LIMIT) {
      closeBody(res.body);
      throw new ReplicatorError('RESPONSE_TOO_LARGE', `${what}: more than ${PAGE_LIMIT} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return parseReferrersList(Buffer.concat(chunks), `${what} (${showName(res.url.pathname)})`);
}
