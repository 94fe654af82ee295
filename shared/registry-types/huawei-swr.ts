import * as z from 'zod/mini';
import type { Credentials } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import { ProviderSource } from './provider-source.js';
import { basicOnOrigin } from './basic.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';
import { swrLogin } from './signing/swr-login.js';

const repositoriesAnswer = z.nullable(z.array(z.looseObject({ name: z.string(), namespace: z.string(), tags: z.optional(z.nullable(z.array(z.string()))) })));
const namespaceAnswer = z.looseObject({ name: z.optional(z.string()) });

/** SWR's API errors: `{errorCode, errorMessage}` (or `{error_code, error_msg}`). */
function swrError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as Record<string, unknown> | null;
  return j && typeof j === 'object' ? { code: j.errorCode ?? j.error_code, message: j.errorMessage ?? j.error_msg } : undefined;
}

/** `swr.<region>.myhuaweicloud.com` (or `.com`/`.eu`): the region of an SWR address. */
export function swrRegion(host: string): string | undefined {
  return /^swr\.([a-z0-9-]+)\.myhuaweicloud\.[a-z]+$/.exec(host)?.[1];
}

/** SWR's login: as given when the user is `<region>@<AK>` already, else derived from the AK/SK pair. */
export function swrCredentials(ctx: Pick<TypeContext, 'credentials' | 'registry' | 'origin' | 'name'>): Credentials | undefined {
  const c = ctx.credentials;
  if (!c || c.username.includes('@')) return c;
  const region = ctx.registry.region ?? swrRegion(ctx.origin.hostname);
  if (!region) throw settingsError(ctx, 'credential: an access key pair needs the region (set region, or use the login user <region>@<AK> and its login key)');
  return swrLogin(region, c.username, c.password);
}

/**
 * Huawei Cloud SWR (Harbor's `huawei` adapter). The registry and SWR's `dockyard` API on the
 * same host take the login credential as Basic: `<region>@<AK>` with the login key, as Harbor
 * takes it, or an AK/SK pair from which that login is derived (signing/swr-login.ts):
 * - listing: `GET /dockyard/v2/repositories?filter=center::self` (one answer with each
 *   repository's namespace, name and tags, as Harbor reads it);
 * - with `create_repositories`: a missing organization (namespace) is created with
 *   `POST /dockyard/v2/namespaces`, after `GET /dockyard/v2/namespaces/{name}`.
 */
export const huaweiSwr: RegistryTypeModule = (ctx) => {
  const login = swrCredentials(ctx);
  const base = new URL(ctx.registry.api_url ?? ctx.origin);
  const credential: ProviderCredential | undefined = basicOnOrigin({ ...ctx, credentials: login }, base);
  return {
    credentials: login,
    source: (client) => new SwrSource(ctx, base, credential, client),
    prepare: async (repository, signal) => {
      const ns = repository.split('/', 1)[0]!;
      const found = await ctx.api.json({ method: 'GET', url: apiUrl(base, ['dockyard', 'v2', 'namespaces', ns]), credential, signal }, z.unknown(), `organization ${ns}`, {
        ok: [200, 404],
        errorOf: swrError,
      });
      if (found.status === 200 && namespaceAnswer.safeParse(found.data).data?.name === ns) return;
      await ctx.api.json(
        { method: 'POST', url: apiUrl(base, ['dockyard', 'v2', 'namespaces']), headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ namespace: ns }), credential, signal },
        z.unknown(),
        `creating organization ${ns}`,
        { ok: [200, 201], errorOf: swrError },
      );
    },
  };
};

class SwrSource extends ProviderSource {
  /** Tags per repository, as the listing answered them. */
  private readonly tagsListed = new Map<string, string[]>();

  constructor(
    private readonly ctx: TypeContext,
    private readonly base: URL,
    private readonly credential: ProviderCredential | undefined,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(_pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const url = apiUrl(this.base, ['dockyard', 'v2', 'repositories'], { filter: 'center::self' });
    const res = await this.ctx.api.json({ method: 'GET', url, credential: this.credential, signal }, repositoriesAnswer, 'repositories', { errorOf: swrError });
    for (const r of res.data ?? []) {
      const name = `${r.namespace}/${r.name}`;
      this.tagsListed.set(name, r.tags ?? []);
      yield name;
    }
  }

  protected override tagsOf(repository: string) {
    return this.tagsListed.get(repository);
  }
}
