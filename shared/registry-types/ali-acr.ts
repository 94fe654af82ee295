import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { namespacesOf, ProviderSource } from './provider-source.js';
import { expiringCredentials } from './expiring-credentials.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import { bearerChallenge } from './realm.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';
import { acs3Headers } from './signing/acs3.js';

const PERSONAL_VERSION = '2016-06-07'; // `cr`, ROA
const EE_VERSION = '2018-12-01'; // `cr_ee`, RPC
const PAGE_SIZE = 100;

/** `https://cr.<region>.aliyuncs.com` (the API's address) names the registry `https://registry.<region>.aliyuncs.com`, as Harbor maps it. */
export function aliRegistryHost(url: URL): string {
  const m = /^cr\.([\w-]+)\.aliyuncs\.com$/.exec(url.hostname);
  return m ? `registry.${m[1]}.aliyuncs.com` : url.host;
}

/** `registry.aliyuncs.com:<region>:<id>` (personal) or `...:cri-<instance>` (Enterprise Edition): the challenge's service. */
export function parseAliService(service: string | undefined): { region: string; instance: string | undefined } | undefined {
  const parts = (service ?? '').split(':');
  // The region becomes the API's host name (cr.<region>.aliyuncs.com), where signed requests go:
  // from a registry's answer, only a region id is taken, never something that moves the host.
  if (parts.length < 2 || parts[0]!.toLowerCase() !== 'registry.aliyuncs.com' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(parts[1]!)) return undefined;
  const last = parts[parts.length - 1]!;
  return { region: parts[1]!, instance: /^cri-[A-Za-z0-9]{1,64}$/.test(last) ? last : undefined };
}

const num = z.union([z.number(), z.string()]);
const personalToken = z.looseObject({ data: z.looseObject({ authorizationToken: z.string(), tempUserName: z.string(), expireDate: z.optional(num) }) });
const eeToken = z.looseObject({ AuthorizationToken: z.optional(z.string()), TempUsername: z.optional(z.string()), ExpireTime: z.optional(num) });
const personalNamespaces = z.looseObject({ data: z.looseObject({ namespaces: z.nullable(z.array(z.looseObject({ namespace: z.string() }))) }) });
const personalRepos = z.looseObject({ data: z.looseObject({ total: z.optional(num), repos: z.nullable(z.array(z.looseObject({ repoName: z.string(), repoNamespace: z.string() }))) }) });
const personalTags = z.looseObject({ data: z.looseObject({ total: z.optional(num), tags: z.nullable(z.array(z.looseObject({ tag: z.string() }))) }) });
const eeNamespaces = z.looseObject({ TotalCount: z.optional(num), Namespaces: z.optional(z.nullable(z.array(z.looseObject({ NamespaceName: z.string() })))) });
const eeRepos = z.looseObject({ TotalCount: z.optional(num), Repositories: z.optional(z.nullable(z.array(z.looseObject({ RepoName: z.string(), RepoNamespaceName: z.string(), RepoId: z.string() })))) });
const eeTags = z.looseObject({ TotalCount: z.optional(num), Images: z.optional(z.nullable(z.array(z.looseObject({ Tag: z.string() })))) });

/** Alibaba Cloud's API errors: `{Code, Message}` (RPC) or `{code, message}` (ROA). */
function aliError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as { Code?: unknown; Message?: unknown; code?: unknown; message?: unknown } | null;
  return j && typeof j === 'object' ? { code: j.Code ?? j.code, message: j.Message ?? j.message } : undefined;
}

/**
 * Alibaba Cloud Container Registry (Harbor's `aliacr` adapter), personal and Enterprise
 * Edition, through Alibaba's OpenAPI signed with ACS3-HMAC-SHA256 (signing/acs3.ts; no SDK). The
 * credential is an AccessKey pair:
 * - the registry's challenge says which: its service is `registry.aliyuncs.com:<region>:<id>`,
 *   an instance id `cri-...` at the end meaning Enterprise Edition (`region`/`instance` override);
 * - GetAuthorizationToken (`GET /tokens` on cr.<region>.aliyuncs.com; EE: the RPC action with
 *   `InstanceId`) gives a temporary user and password, the registry's Basic credential at its
 *   token realm, asked again before they expire;
 * - listing: namespaces (the filter's first component when it names them), each one's
 *   repositories, each repository's tags, pages of 100 until the total.
 * Harbor's adapter prepares nothing before a push (ACR creates repositories on push when the
 * namespace allows it), nor does this one.
 */
export const aliAcr: RegistryTypeModule = (ctx) => {
  const api = new AcrApi(ctx);
  return {
    credentials: ctx.credentials ? expiringCredentials(() => api.token(), ctx.now) : undefined,
    source: (client) => new AcrSource(api, client),
  };
};

interface AcrTarget {
  region: string;
  /** Enterprise Edition instance (`cri-...`); undefined: the personal edition. */
  instance: string | undefined;
  base: URL;
}

class AcrApi {
  private target: Promise<AcrTarget> | undefined;
  /** Enterprise Edition repository ids, by `ns/name` (tags are listed by id). */
  readonly repoIds = new Map<string, string>();

  constructor(readonly ctx: TypeContext) {}

  where(signal?: AbortSignal): Promise<AcrTarget> {
    this.target ??= (async () => {
      let { region, instance } = this.ctx.registry;
      if (!region) {
        const found = parseAliService((await bearerChallenge(this.ctx, signal)).service);
        if (!found) throw settingsError(this.ctx, "the registry's token service is not Alibaba's (registry.aliyuncs.com:<region>:...); set region (and instance for Enterprise Edition)");
        region = found.region;
        instance ??= found.instance;
      }
      const base = new URL(this.ctx.registry.api_url ?? `https://cr.${region}.aliyuncs.com`);
      return { region, instance, base };
    })();
    this.target.catch(() => (this.target = undefined));
    return this.target;
  }

  /** One signed call: ROA (`path`, the personal edition) or RPC (`action` on `/`, Enterprise Edition). */
  async call<T>(t: AcrTarget, c: { method: 'GET' | 'POST'; path: string[]; query: Record<string, string | number | undefined>; action: string; version: string }, schema: z.ZodMiniType<T>, signal?: AbortSignal): Promise<T> {
    const key = this.ctx.credentials;
    if (!key) throw settingsError(this.ctx, 'credential: ali-acr needs an AccessKey pair (user: AccessKey ID, password: AccessKey secret)');
    const url = apiUrl(t.base, c.path, c.query);
    const credential: ProviderCredential = {
      origin: t.base.origin,
      headers: () =>
        acs3Headers({
          accessKeyId: key.username,
          accessKeySecret: key.password,
          method: c.method,
          url,
          action: c.action,
          version: c.version,
          date: new Date(this.ctx.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          nonce: randomBytes(16).toString('hex'),
          body: '',
        }),
    };
    const res = await this.ctx.api.json({ method: c.method, url, credential, signal }, schema, `ACR ${c.action}`, { errorOf: aliError });
    return res.data;
  }

  private rpc<T>(t: AcrTarget, action: string, params: Record<string, string | number | undefined>, schema: z.ZodMiniType<T>, signal?: AbortSignal) {
    return this.call(t, { method: 'POST', path: [], query: { InstanceId: t.instance, ...params }, action, version: EE_VERSION }, schema, signal);
  }

  private roa<T>(t: AcrTarget, action: string, path: string[], query: Record<string, string | number | undefined>, schema: z.ZodMiniType<T>, signal?: AbortSignal) {
    return this.call(t, { method: 'GET', path, query, action, version: PERSONAL_VERSION }, schema, signal);
  }

  async token() {
    const t = await this.where();
    let user: string | undefined;
    let password: string | undefined;
    let expires: number | string | undefined;
    if (t.instance) {
      const r = await this.rpc(t, 'GetAuthorizationToken', {}, eeToken);
      [user, password, expires] = [r.TempUsername, r.AuthorizationToken, r.ExpireTime];
    } else {
      const r = await this.roa(t, 'GetAuthorizationToken', ['tokens'], {}, personalToken);
      [user, password, expires] = [r.data.tempUserName, r.data.authorizationToken, r.data.expireDate];
    }
    if (!user || !password) throw new ReplicatorError('AUTH_TOKEN', `${this.ctx.name}: ACR GetAuthorizationToken answered no user or password`);
    const expiresAt = Number(expires);
    return { credentials: { username: user, password }, expiresAt: Number.isFinite(expiresAt) && expiresAt > 0 ? expiresAt : this.ctx.now() + 60 * 60_000 };
  }

  /** Pages 1, 2, ... of a listing until `total` items (bounded by limits.max_pages). */
  private async *paged<T>(listing: string, page: (n: number) => Promise<{ items: T[]; total: number }>): AsyncGenerator<T> {
    const walk = this.ctx.api.pages(listing);
    let seen = 0;
    for (let n = 1; ; n++) {
      const { items, total } = await page(n);
      yield* items;
      seen += items.length;
      const here = new URL(`acr:${listing}?page=${n}`);
      if (!walk.next(here, items.length > 0 && seen < total ? new URL(`acr:${listing}?page=${n + 1}`) : undefined)) return;
    }
  }

  async *namespaces(signal?: AbortSignal): AsyncGenerator<string> {
    const t = await this.where(signal);
    if (!t.instance) {
      const r = await this.roa(t, 'GetNamespaceList', ['namespace'], {}, personalNamespaces, signal);
      for (const n of r.data.namespaces ?? []) yield n.namespace;
      return;
    }
    yield* this.paged('namespaces', async (n) => {
      const r = await this.rpc(t, 'ListNamespace', { PageNo: n, PageSize: PAGE_SIZE }, eeNamespaces, signal);
      return { items: (r.Namespaces ?? []).map((x) => x.NamespaceName), total: Number(r.TotalCount ?? 0) };
    });
  }

  async *repositories(ns: string, signal?: AbortSignal): AsyncGenerator<string> {
    const t = await this.where(signal);
    if (!t.instance) {
      yield* this.paged(`${ns} repositories`, async (n) => {
        const r = await this.roa(t, 'GetRepoListByNamespace', ['repos', ns], { Page: n, PageSize: PAGE_SIZE }, personalRepos, signal);
        return { items: (r.data.repos ?? []).map((x) => `${x.repoNamespace}/${x.repoName}`), total: Number(r.data.total ?? 0) };
      });
      return;
    }
    yield* this.paged(`${ns} repositories`, async (n) => {
      const r = await this.rpc(t, 'ListRepository', { RepoNamespaceName: ns, RepoStatus: 'NORMAL', PageNo: n, PageSize: PAGE_SIZE }, eeRepos, signal);
      const items = (r.Repositories ?? []).map((x) => {
        const name = `${x.RepoNamespaceName}/${x.RepoName}`;
        this.repoIds.set(name, x.RepoId);
        return name;
      });
      return { items, total: Number(r.TotalCount ?? 0) };
    });
  }

  /** Tags through the API; undefined when the API cannot name the repository (EE, not listed). */
  async tags(repository: string, signal?: AbortSignal): Promise<AsyncGenerator<string> | undefined> {
    const t = await this.where(signal);
    const [ns, ...rest] = repository.split('/');
    if (!t.instance) {
      if (rest.length === 0) return undefined;
      return this.paged(`${repository} tags`, async (n) => {
        const r = await this.roa(t, 'GetRepoTags', ['repos', ns!, rest.join('/'), 'tags'], { Page: n, PageSize: PAGE_SIZE }, personalTags, signal);
        return { items: (r.data.tags ?? []).map((x) => x.tag), total: Number(r.data.total ?? 0) };
      });
    }
    const id = this.repoIds.get(repository);
    if (!id) return undefined;
    return this.paged(`${repository} tags`, async (n) => {
      const r = await this.rpc(t, 'ListRepoTag', { RepoId: id, PageNo: n, PageSize: PAGE_SIZE }, eeTags, signal);
      return { items: (r.Images ?? []).map((x) => x.Tag), total: Number(r.TotalCount ?? 0) };
    });
  }
}

class AcrSource extends ProviderSource {
  constructor(
    private readonly api: AcrApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const ns of namespacesOf(pattern) ?? this.api.namespaces(signal)) yield* this.api.repositories(ns, signal);
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    return this.api.tags(repository, signal);
  }
}
