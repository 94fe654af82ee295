import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { header } from '../registry/http.js';
import { namesOf, ProviderSource } from './provider-source.js';
import { oncePerKey } from '../util/once-per-key.js';
import { basicOnOrigin } from './basic.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import type { RegistryTypeModule, TypeContext } from './registry-type.js';

const PAGE_SIZE = 100;

const repositoriesAnswer = z.looseObject({ repositories: z.nullable(z.array(z.looseObject({ name: z.string(), namespace: z.string() }))) });
const tagsAnswer = z.nullable(z.array(z.looseObject({ name: z.string() })));

/** DTR's API errors: `{errors: [{code, message}]}`. */
function dtrError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const first = (json as { errors?: Array<{ code?: unknown; message?: unknown }> } | null)?.errors?.[0];
  return first ? { code: first.code, message: first.message } : undefined;
}

/**
 * Docker Trusted Registry / Mirantis Secure Registry (Harbor's `dtr` adapter). Repositories are
 * `<namespace>/<name>` (two components). The registry and DTR's API take a user with a password
 * or an access token (Basic; the registry at its token realm):
 * - listing through `/api/v0/repositories?pageSize=100` and `/api/v0/repositories/{ns}/{name}/tags`,
 *   following `X-Next-Page-Start` (`pageStart`);
 * - with `create_repositories`, a missing namespace is created as an organization
 *   (`POST /enzi/v0/accounts`) and a missing repository as a private one
 *   (`POST /api/v0/repositories/{ns}`), since DTR refuses pushes to a repository that does not
 *   exist. Harbor lists every account and repository to find out; here each is asked directly.
 */
export const dtr: RegistryTypeModule = (ctx) => {
  const api = new DtrApi(ctx);
  const namespace = oncePerKey((ns) => api.ensureNamespace(ns));
  return {
    source: (client) => new DtrSource(api, client),
    prepare: async (repository, signal) => {
      const [ns, name, ...rest] = repository.split('/');
      if (!name || rest.length > 0) throw new ReplicatorError('DESTINATION_NAME', `${ctx.name}: a DTR repository is <namespace>/<name>, not "${repository}"`);
      await namespace(ns!);
      await api.ensureRepository(ns!, name, signal);
    },
  };
};

class DtrApi {
  readonly base: URL;
  readonly credential: ProviderCredential | undefined;

  constructor(readonly ctx: TypeContext) {
    this.base = new URL(ctx.registry.api_url ?? ctx.registry.url ?? ctx.origin);
    this.credential = basicOnOrigin(ctx, this.base);
  }

  /** Every item of a DTR list, page after page (`X-Next-Page-Start` into `pageStart`). */
  async *list<T>(segments: string[], items: (data: unknown) => T[], schema: z.ZodMiniType, listing: string, signal?: AbortSignal, missingIsEmpty = false): AsyncGenerator<T> {
    const walk = this.ctx.api.pages(listing);
    let url: URL | undefined = apiUrl(this.base, segments, { pageSize: PAGE_SIZE });
    while (url) {
      const res = await this.ctx.api.json({ method: 'GET', url, credential: this.credential, signal }, schema, listing, { ok: missingIsEmpty ? [200, 404] : [200], errorOf: dtrError });
      if (res.status === 404) return;
      yield* items(res.data);
      const start = header(res.headers, 'x-next-page-start')?.trim();
      let next: URL | undefined;
      if (start) {
        next = new URL(url);
        next.searchParams.set('pageStart', start);
      }
      url = walk.next(url, next);
    }
  }

  private async exists(segments: string[], what: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.ctx.api.json({ method: 'GET', url: apiUrl(this.base, segments), credential: this.credential, signal }, z.unknown(), what, { ok: [200, 404], errorOf: dtrError });
    return res.status === 200;
  }

  private async create(segments: string[], body: unknown, what: string, signal?: AbortSignal): Promise<void> {
    await this.ctx.api.json(
      { method: 'POST', url: apiUrl(this.base, segments), headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credential: this.credential, signal },
      z.unknown(),
      what,
      { ok: [200, 201], errorOf: dtrError },
    );
  }

  async ensureNamespace(ns: string, signal?: AbortSignal): Promise<void> {
    if (await this.exists(['enzi', 'v0', 'accounts', ns], `namespace ${ns}`, signal)) return;
    await this.create(['enzi', 'v0', 'accounts'], { name: ns, fullName: ns, isOrg: true }, `creating namespace ${ns}`, signal);
  }

  async ensureRepository(ns: string, name: string, signal?: AbortSignal): Promise<void> {
    if (await this.exists(['api', 'v0', 'repositories', ns, name], `repository ${ns}/${name}`, signal)) return;
    const body = { name, visibility: 'private', enableManifestLists: true, immutableTags: false, scanOnPush: false, tagLimit: 0 };
    await this.create(['api', 'v0', 'repositories', ns], body, `creating repository ${ns}/${name}`, signal);
  }
}

class DtrSource extends ProviderSource {
  constructor(
    private readonly api: DtrApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(_pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const items = (d: unknown) => (d as z.infer<typeof repositoriesAnswer>).repositories ?? [];
    for await (const r of this.api.list(['api', 'v0', 'repositories'], items, repositoriesAnswer, 'repositories', signal)) yield `${r.namespace}/${r.name}`;
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    const parts = repository.split('/');
    if (parts.length !== 2) return undefined;
    const items = (d: unknown) => (d as z.infer<typeof tagsAnswer>) ?? [];
    return namesOf(this.api.list(['api', 'v0', 'repositories', parts[0]!, parts[1]!, 'tags'], items, tagsAnswer, `${repository} tags`, signal, true), (t) => t.name);
  }
}
