import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { isDigest, isRepositoryName, isTag } from '../registry/names.js';
import { describeIssue } from '../util/schema.js';

/** Resources one delivery may name (Harbor sends one). */
export const MAX_RESOURCES = 100;

/** Harbor event types that start replications; others are acknowledged and ignored. */
export const REPLICATED_EVENTS = ['PUSH_ARTIFACT', 'DELETE_ARTIFACT'] as const;

/** The envelope every Harbor webhook has (`pkg/notifier/model/event.go`, default format). */
const envelopeSchema = z.looseObject({
  type: z.string().check(z.minLength(1)),
  occur_at: z.number(),
  operator: z.optional(z.string()),
});

/** PUSH_ARTIFACT / DELETE_ARTIFACT payloads (`pkg/notifier/formats/default.go`). */
const artifactEventSchema = z.looseObject({
  type: z.enum(REPLICATED_EVENTS),
  occur_at: z.number(),
  operator: z.optional(z.string()),
  event_data: z.looseObject({
    resources: z
      .array(
        z.looseObject({
          digest: z.string().check(z.refine(isDigest, 'must be a digest (sha256:<64 hex>)')),
          // An untagged artifact comes with its digest as the tag.
          tag: z.optional(z.string().check(z.refine((t) => isTag(t) || isDigest(t), 'must be a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) or the digest'))),
          resource_url: z.string().check(z.minLength(1), z.maxLength(1024)),
        }),
      )
      // Harbor sends one resource per event; a delivery naming thousands is not Harbor's.
      .check(z.minLength(1), z.maxLength(MAX_RESOURCES, `at most ${MAX_RESOURCES} resources per delivery`)),
    repository: z.looseObject({
      name: z.optional(z.string()),
      namespace: z.optional(z.string()),
      repo_full_name: z.string().check(z.refine(isRepositoryName, 'must be a repository path (lowercase components, at most 255 characters)')),
      repo_type: z.optional(z.string()),
    }),
  }),
});

/** One artifact a webhook tells about. */
export interface HarborArtifactEvent {
  type: (typeof REPLICATED_EVENTS)[number];
  /** `host[:port]` of Harbor, from `resource_url` (no scheme there). */
  host: string;
  repository: string;
  digest: string;
  /** The tag Harbor sent (only the first one); none when the artifact is untagged. */
  tag: string | undefined;
  occurAt: number;
  operator: string | undefined;
  /** Same delivery, same key: Harbor retries after 3 s. */
  idempotencyKey: string;
}

/** What parsing a webhook body gave. */
export type ParsedWebhook =
  | { kind: 'artifacts'; events: HarborArtifactEvent[] }
  | { kind: 'ignored'; type: string }
  | { kind: 'invalid'; reason: string };

/** Parses and validates a Harbor webhook body (already JSON-decoded). */
export function parseHarborWebhook(body: unknown): ParsedWebhook {
  const envelope = envelopeSchema.safeParse(body);
  if (!envelope.success) return { kind: 'invalid', reason: describeIssue(envelope.error) };
  if (!(REPLICATED_EVENTS as readonly string[]).includes(envelope.data.type)) return { kind: 'ignored', type: envelope.data.type };
  const parsed = artifactEventSchema.safeParse(body);
  if (!parsed.success) return { kind: 'invalid', reason: describeIssue(parsed.error) };
  const p = parsed.data;
  const repository = p.event_data.repository.repo_full_name;
  const events: HarborArtifactEvent[] = [];
  for (const [i, r] of p.event_data.resources.entries()) {
    const host = r.resource_url.split('/', 1)[0]!;
    if (!host || !r.resource_url.slice(host.length + 1).startsWith(repository)) {
      return { kind: 'invalid', reason: `event_data.resources[${i}].resource_url: "${r.resource_url}" is not host/${repository}...` };
    }
    // An untagged artifact comes with its digest as the tag.
    const tag = r.tag && isTag(r.tag) ? r.tag : undefined;
    // occur_at has a resolution of one second: two tags of one digest pushed within it are two
    // deliveries, so the tag and the Harbor it came from are part of the key.
    const key = createHash('sha256').update([p.type, host, repository, r.digest, tag ?? '', p.occur_at].join('\n')).digest('hex');
    events.push({ type: p.type, host, repository, digest: r.digest, tag, occurAt: p.occur_at, operator: p.operator, idempotencyKey: key });
  }
  return { kind: 'artifacts', events };
}

/** `host:port` without the scheme's default port, to compare a URL with a `resource_url` host. */
export function normalizeHost(host: string, scheme: 'http' | 'https' = 'https'): string {
  const h = host.toLowerCase();
  if (scheme === 'https' && h.endsWith(':443')) return h.slice(0, -4);
  if (scheme === 'http' && h.endsWith(':80')) return h.slice(0, -3);
  return h;
}
