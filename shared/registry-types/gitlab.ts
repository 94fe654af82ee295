import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { header } from '../registry/http.js';
import { namesOf, ProviderSource } from './provider-source.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import { bearerChallenge } from './realm.js';
import type { RegistryTypeModule, TypeContext } from './registry-type.js';

const PER_PAGE = 50; // Harbor's

const projectsAnswer = z.array(
  z.looseObject({
    id: z.int(),
    path_with_namespace: z.optional(z.string()),
    container_registry_enabled: z.optional(z.nullable(z.boolean())),
    container_registry_access_level: z.optional(z.nullable(z.string())),
  }),
);
const repositoriesAnswer = z.array(z.looseObject({ id: z.int(), path: z.string() }));
const tagsAnswer = z.array(z.looseObject({ name: z.string() }));

/** GitLab's API errors: `{message}` or `{error, error_description}`. */
function gitlabError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as { message?: unknown; error?: unknown; error_description?: unknown } | null;
  if (!j || typeof j !== 'object') return undefined;
  return { code: typeof j.error === 'string' ? j.error : undefined, message: typeof j.message === 'string' ? j.message : j.error_description };
}

/**
 * GitLab's container registry (Harbor's `gitlab` adapter). The registry takes the user and a
 * personal, project, group or deploy token as Basic credentials at GitLab's token realm
 * (`/jwt/auth`). Repositories are project paths (`group/sub/project[/image]`), listed through
 * GitLab's API as Harbor does, at the realm's host (or `api_url`), with the token in
 * `PRIVATE-TOKEN` for that host only:
 * - projects found by the filter's leading components without wildcards
 *   (`/api/v4/projects?search=...&membership=true&search_namespaces=true`), else every project the
 *   token is a member of (`membership=1`); projects whose registry is disabled are skipped;
 * - each project's registry repositories and each repository's tags, `per_page=50`, following
 *   `X-Next-Page` (bounded like every listing).
 * A deploy token cannot use the API: with one, name the repositories exactly (no listing needed).
 */
export const gitlab: RegistryTypeModule = (ctx) => ({
  source: (client) => new GitLabSource(ctx, client),
});

class GitLabSource extends ProviderSource {
  /** Where each listed repository is in GitLab's API (tags are listed there). */
  private readonly known = new Map<string, { project: number; repository: number }>();
  private api: Promise<{ base: URL; credential: ProviderCredential | undefined }> | undefined;

  constructor(
    private readonly ctx: TypeContext,
    client: RegistryClient,
  ) {
    super(client);
  }

  /** GitLab's API: `api_url`, else the token realm's origin (Harbor's choice). */
  private base(signal?: AbortSignal) {
    this.api ??= (async () => {
      const base = this.ctx.registry.api_url ? new URL(this.ctx.registry.api_url) : new URL((await bearerChallenge(this.ctx, signal)).realm.origin);
      const token = this.ctx.credentials?.password;
      const credential: ProviderCredential | undefined = token ? { origin: base.origin, headers: () => ({ 'private-token': token }) } : undefined;
      return { base, credential };
    })();
    this.api.catch(() => (this.api = undefined));
    return this.api;
  }

  /** Every item of a GitLab list endpoint, page after page (`X-Next-Page`). */
  private async *list<T>(segments: string[], query: Record<string, string | number>, schema: z.ZodMiniType<T[]>, listing: string, signal?: AbortSignal): AsyncGenerator<T> {
    const { base, credential } = await this.base(signal);
    const walk = this.ctx.api.pages(listing);
    const prefix = new URL(base.pathname.replace(/\/?$/, '/api/v4/'), base);
    let url: URL | undefined = apiUrl(prefix, segments, { ...query, per_page: PER_PAGE });
    while (url) {
      const res = await this.ctx.api.json({ method: 'GET', url, credential, signal }, schema, listing, { errorOf: gitlabError }).catch((err: unknown) => {
        throw deployTokenHint(err, this.ctx);
      });
      yield* res.data;
      const nextPage = header(res.headers, 'x-next-page')?.trim();
      let next: URL | undefined;
      if (nextPage) {
        if (!/^\d{1,9}$/.test(nextPage)) throw new ReplicatorError('INVALID_RESPONSE', `${this.ctx.name}: GitLab's X-Next-Page is not a page number`);
        next = new URL(url);
        next.searchParams.set('page', nextPage);
      }
      url = walk.next(url, next);
    }
  }

  /** Harbor's `getProjectsByPattern`: the leading components without `*` name the project to search for. */
  private projects(pattern: string, signal?: AbortSignal) {
    const parts = pattern.split('/');
    let name = '';
    for (const [i, part] of parts.entries()) {
      if (/[*?[{]/.test(part)) {
        if (i !== 0) break;
      } else {
        name += `${part}/`;
      }
    }
    const query: Record<string, string> = name ? { search: name.replace(/\/$/, ''), membership: 'true', search_namespaces: 'true' } : { membership: '1' };
    return this.list(['projects'], query, projectsAnswer, 'projects', signal);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const project of this.projects(pattern, signal)) {
      if (project.container_registry_enabled === false || project.container_registry_access_level === 'disabled') continue;
      for await (const repo of this.list(['projects', String(project.id), 'registry', 'repositories'], {}, repositoriesAnswer, `project ${project.id} repositories`, signal)) {
        const path = repo.path.toLowerCase();
        this.known.set(path, { project: project.id, repository: repo.id });
        yield path;
      }
    }
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    const at = this.known.get(repository);
    if (!at) return undefined;
    const segments = ['projects', String(at.project), 'registry', 'repositories', String(at.repository), 'tags'];
    return namesOf(this.list(segments, {}, tagsAnswer, `${repository} tags`, signal), (t) => t.name);
  }
}

/** A 401/403 from the API with a deploy token: say what to do instead. */
function deployTokenHint(err: unknown, ctx: TypeContext): unknown {
  const status = (err as { status?: number }).status;
  if ((status === 401 || status === 403) && /^gitlab\+deploy-token/.test(ctx.credentials?.username ?? '')) {
    return new ReplicatorError(
      'LISTING_UNSUPPORTED',
      `${ctx.name}: GitLab's API refuses deploy tokens, so repositories cannot be listed with one: name them exactly in the name filter, or use a personal, project or group access token (read_api)`,
      { cause: err },
    );
  }
  return err;
}
