import * as z from 'zod/mini';
import type { CredentialsProvider } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import { namesOf, namespacesOf, ProviderSource } from './provider-source.js';
import { expiringCredentials } from './expiring-credentials.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import type { RegistryTypeModule, TypeContext } from './registry-type.js';

/** Docker Hub's API, whatever the registry's URL says (Harbor's `baseURL`). */
export const DOCKER_HUB_API = 'https://hub.docker.com';
/** Hub's API tokens last 10 minutes (Harbor refreshes after 9). */
const HUB_TOKEN_MS = 10 * 60_000;
const PAGE_SIZE = 100;

const tokenAnswer = z.looseObject({ access_token: z.string().check(z.minLength(1)) });
const namespacesAnswer = z.looseObject({ namespaces: z.array(z.string()) });
const reposAnswer = z.looseObject({
  next: z.optional(z.nullable(z.string())),
  results: z.nullable(z.array(z.looseObject({ name: z.string(), namespace: z.string() }))),
});
const tagsAnswer = z.looseObject({
  next: z.optional(z.nullable(z.string())),
  results: z.nullable(z.array(z.looseObject({ name: z.string() }))),
});

/** Hub's API errors: `{message}` or `{detail}` (and `errinfo`). */
function hubError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as { message?: unknown; detail?: unknown } | null;
  return j && typeof j === 'object' ? { message: j.message ?? j.detail } : undefined;
}

/**
 * Docker Hub (Harbor's `dockerhub` adapter). The registry is registry-1.docker.io with
 * auth.docker.io's tokens (the distribution protocol); listing and organizations go through Hub's
 * API at hub.docker.com, as Harbor does, since `_catalog` is not served there:
 * - a token from `POST /v2/auth/token` (`{identifier, secret}`: the user and password or access
 *   token), as a Bearer for the API only, asked again before its 10 minutes are up;
 * - namespaces named by the filter's first component, else `GET /v2/repositories/namespaces`;
 *   each namespace's repositories (`/v2/repositories/{ns}/?page=&page_size=100`), each
 *   repository's tags (`/v2/repositories/{ns}/{name}/tags/?page=&page_size=100`);
 * - with `create_repositories`, a missing organization made with `POST /v2/orgs/` (Harbor always
 *   does this; here it is asked for, since a user's own namespace is no organization).
 * The rate-limit headers (`ratelimit-remaining`) of the registry's answers are surfaced with each
 * response (shared/registry/http.ts); pacing copiers on them is the registry client's job.
 */
export const dockerHub: RegistryTypeModule = (ctx) => {
  const hub = new HubApi(ctx);
  return {
    source: (client) => new HubSource(hub, client),
    prepare: (repository, signal) => hub.ensureOrganization(repository.split('/', 1)[0]!, signal),
  };
};

class HubApi {
  readonly base: URL;
  readonly credential: ProviderCredential | undefined;
  private readonly token: CredentialsProvider | undefined;

  constructor(private readonly ctx: TypeContext) {
    this.base = new URL(ctx.registry.api_url ?? DOCKER_HUB_API);
    const c = ctx.credentials;
    if (c) {
      // Anonymous listing works for public repositories; with a credential, log in first.
      this.token = expiringCredentials(async () => {
        const res = await ctx.api.json(
          {
            method: 'POST',
            url: apiUrl(this.base, ['v2', 'auth', 'token']),
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ identifier: c.username, secret: c.password }),
          },
          tokenAnswer,
          `Docker Hub login of "${c.username}"`,
          { errorOf: hubError },
        );
        return { credentials: { username: c.username, password: res.data.access_token }, expiresAt: ctx.now() + HUB_TOKEN_MS };
      }, ctx.now);
      const token = this.token;
      this.credential = { origin: this.base.origin, headers: async () => ({ authorization: `Bearer ${(await token()).password}` }) };
    }
  }

  get<T>(segments: string[], query: Record<string, string | number>, schema: z.ZodMiniType<T>, what: string, signal?: AbortSignal, ok: number[] = [200]) {
    return this.ctx.api.json({ method: 'GET', url: apiUrl(this.base, segments, query, true), credential: this.credential, signal }, schema, what, { ok, errorOf: hubError });
  }

  async *namespaces(signal?: AbortSignal): AsyncGenerator<string> {
    const res = await this.get(['v2', 'repositories', 'namespaces'], {}, namespacesAnswer, 'namespaces', signal);
    yield* res.data.namespaces;
  }

  /** Every item of a paged listing (`page` counts from 1; `next` says whether there is more). */
  async *paged<T>(segments: string[], listing: string, schema: z.ZodMiniType<{ next?: string | null | undefined; results: T[] | null }>, signal?: AbortSignal, missingIsEmpty = false): AsyncGenerator<T> {
    const walk = this.ctx.api.pages(listing);
    for (let page = 1; ; page++) {
      const url = apiUrl(this.base, segments, { page, page_size: PAGE_SIZE }, true);
      const res = await this.get(segments, { page, page_size: PAGE_SIZE }, schema, listing, signal, missingIsEmpty ? [200, 404] : [200]);
      if (res.status === 404) return;
      yield* res.data.results ?? [];
      // Harbor counts pages and stops when `next` is empty; the walk bounds a `next` that never is.
      const more = typeof res.data.next === 'string' && res.data.next !== '' && (res.data.results?.length ?? 0) > 0;
      if (!walk.next(url, more ? apiUrl(this.base, segments, { page: page + 1, page_size: PAGE_SIZE }, true) : undefined)) return;
    }
  }

  async ensureOrganization(org: string, signal?: AbortSignal): Promise<void> {
    const found = await this.get(['v2', 'orgs', org], {}, z.unknown(), `organization ${org}`, signal, [200, 404]);
    if (found.status === 200) return;
    await this.ctx.api.json(
      {
        method: 'POST',
        url: apiUrl(this.base, ['v2', 'orgs'], {}, true),
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orgname: org, full_name: org, company: org }),
        credential: this.credential,
        signal,
      },
      z.unknown(),
      `creating organization ${org}`,
      { ok: [200, 201], errorOf: hubError },
    );
  }
}

/** Lists Docker Hub through Hub's API (see dockerHub); a repository that is not `ns/name` through the registry. */
class HubSource extends ProviderSource {
  constructor(
    private readonly hub: HubApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const ns of namespacesOf(pattern) ?? this.hub.namespaces(signal)) {
      for await (const repo of this.hub.paged(['v2', 'repositories', ns], `namespace ${ns} repositories`, reposAnswer, signal)) {
        yield `${repo.namespace}/${repo.name}`;
      }
    }
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    const parts = repository.split('/');
    if (parts.length !== 2) return undefined;
    return namesOf(this.hub.paged(['v2', 'repositories', parts[0]!, parts[1]!, 'tags'], `${repository} tags`, tagsAnswer, signal, true), (t) => t.name);
  }
}
