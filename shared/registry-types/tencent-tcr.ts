import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { namespacesOf, ProviderSource } from './provider-source.js';
import { oncePerKey } from '../util/once-per-key.js';
import { expiringCredentials } from './expiring-credentials.js';
import { providerError, type ProviderCredential } from './provider-api.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';
import { tc3Headers } from './signing/tc3.js';

/** Tencent Cloud's API 3.0 endpoint for TCR. */
export const TCR_API = 'https://tcr.tencentcloudapi.com';
const VERSION = '2019-09-24';
/** The region Harbor asks DescribeInstances in (with AllRegion) before it knows the instance's. */
const LOOKUP_REGION = 'ap-guangzhou';
const PAGE_SIZE = 20; // Harbor's

/** Every API 3.0 answer: `{Response: {..., Error?: {Code, Message}, RequestId}}`, errors with HTTP 200. */
const envelope = <T extends z.ZodMiniType>(result: T) => z.looseObject({ Response: result });
const errorPart = z.optional(z.looseObject({ Code: z.optional(z.string()), Message: z.optional(z.string()) }));
const count = z.optional(z.nullable(z.number()));

const instancesAnswer = envelope(z.looseObject({ Error: errorPart, TotalCount: count, Registries: z.optional(z.nullable(z.array(z.looseObject({ RegistryId: z.string(), RegionName: z.string() })))) }));
const tokenAnswer = envelope(z.looseObject({ Error: errorPart, Username: z.optional(z.string()), Token: z.optional(z.string()), ExpTime: z.optional(z.number()) }));
const namespacesAnswer = envelope(z.looseObject({ Error: errorPart, TotalCount: count, NamespaceList: z.optional(z.nullable(z.array(z.looseObject({ Name: z.string() })))) }));
const repositoriesAnswer = envelope(z.looseObject({ Error: errorPart, TotalCount: count, RepositoryList: z.optional(z.nullable(z.array(z.looseObject({ Name: z.string() })))) }));
const imagesAnswer = envelope(z.looseObject({ Error: errorPart, TotalCount: count, ImageInfoList: z.optional(z.nullable(z.array(z.looseObject({ ImageVersion: z.string() })))) }));
const plainAnswer = envelope(z.looseObject({ Error: errorPart }));

/**
 * Tencent Container Registry (Harbor's `tencentcr` adapter), through TCR's API 3.0 signed with
 * TC3-HMAC-SHA256 (signing/tc3.ts; no SDK). The credential is a SecretId/SecretKey pair
 * (`AKID...`), not a docker login:
 * - the instance: `region` and `instance` (its registry id) when set, else DescribeInstances
 *   across regions filtered by the registry name (the URL's host before `.tencentcloudcr.com`);
 * - CreateInstanceToken gives a temporary user and token, the registry's Basic credential at its
 *   token realm, asked again before `ExpTime`;
 * - listing: DescribeNamespaces (the filter's first component when it names them), then
 *   DescribeRepositories and DescribeImages per repository, Harbor's page size 20;
 * - with `create_repositories`: a missing namespace is created private (CreateNamespace,
 *   `IsPublic: false`, as Harbor does "for safety"), then the repository (CreateRepository).
 */
export const tencentTcr: RegistryTypeModule = (ctx) => {
  const api = new TcrApi(ctx);
  const namespace = oncePerKey((ns) => api.ensureNamespace(ns));
  return {
    credentials: ctx.credentials ? expiringCredentials(() => api.instanceToken(), ctx.now) : undefined,
    source: (client) => new TcrSource(api, client),
    prepare: async (repository, signal) => {
      const [ns, ...rest] = repository.split('/');
      await namespace(ns!);
      await api.ensureRepository(ns!, rest.join('/'), signal);
    },
  };
};

class TcrApi {
  private readonly url: URL;
  private instance: Promise<{ id: string; region: string }> | undefined;

  constructor(readonly ctx: TypeContext) {
    this.url = new URL(ctx.registry.api_url ?? TCR_API);
    const c = ctx.credentials;
    if (c && !/^(AKID|IKID)/.test(c.username)) {
      throw settingsError(ctx, 'credential: tencent-tcr takes a SecretId/SecretKey pair (the user starts with AKID), not docker login credentials');
    }
  }

  /** One API action; errors (HTTP 200 with `Response.Error`) become RegistryErrors with TCR's code. */
  async call<T extends { Response: { Error?: { Code?: string | undefined; Message?: string | undefined } | undefined } }>(
    action: string,
    params: Record<string, unknown>,
    schema: z.ZodMiniType<T>,
    region: string | undefined,
    signal?: AbortSignal,
  ): Promise<T['Response']> {
    const c = this.ctx.credentials;
    if (!c) throw settingsError(this.ctx, 'credential: tencent-tcr needs a SecretId/SecretKey pair');
    const payload = JSON.stringify(params);
    const credential: ProviderCredential = {
      origin: this.url.origin,
      headers: () =>
        tc3Headers({ secretId: c.username, secretKey: c.password, service: 'tcr', host: this.url.host, action, version: VERSION, region, timestamp: Math.floor(this.ctx.now() / 1000), payload }),
    };
    const res = await this.ctx.api.json({ method: 'POST', url: this.url, body: payload, credential, signal }, schema, action);
    const error = res.data.Response.Error;
    if (error) throw providerError(res.status, 'POST', res.url, { code: error.Code, message: error.Message }, `${this.ctx.name}: TCR ${action} failed`);
    return res.data.Response;
  }

  /** The registry id and region of the instance the URL names. */
  target(signal?: AbortSignal): Promise<{ id: string; region: string }> {
    const { instance, region } = this.ctx.registry;
    if (instance && region) return Promise.resolve({ id: instance, region });
    this.instance ??= (async () => {
      const name = this.ctx.origin.host.replace(/\.tencentcloudcr\.com$/, '');
      const found = await this.call('DescribeInstances', { AllRegion: true, Filters: [{ Name: 'RegistryName', Values: [name] }] }, instancesAnswer, LOOKUP_REGION, signal);
      const first = found.Registries?.[0];
      // The region goes into a signed header and the id into every call: ids only.
      if (first && (!/^[a-z0-9-]{1,64}$/.test(first.RegionName) || !/^[A-Za-z0-9-]{1,64}$/.test(first.RegistryId))) {
        throw new ReplicatorError('INVALID_RESPONSE', `${this.ctx.name}: TCR DescribeInstances answered an invalid region or registry id`);
      }
      if (!first) throw new ReplicatorError('REGISTRY_NOT_FOUND', `${this.ctx.name}: TCR has no instance named "${name}" for this SecretId (set instance and region if the URL is a custom domain)`);
      return { id: first.RegistryId, region: region ?? first.RegionName };
    })();
    this.instance.catch(() => (this.instance = undefined));
    return this.instance;
  }

  async instanceToken() {
    const { id, region } = await this.target();
    const t = await this.call('CreateInstanceToken', { RegistryId: id }, tokenAnswer, region);
    if (!t.Username || !t.Token) throw new ReplicatorError('AUTH_TOKEN', `${this.ctx.name}: TCR CreateInstanceToken answered no user or token`);
    return { credentials: { username: t.Username, password: t.Token }, expiresAt: t.ExpTime ?? this.ctx.now() + 60 * 60_000 };
  }

  /**
   * Every item of a listing action, page after page until TotalCount (bounded). Harbor's offsets:
   * namespaces from 0, repositories and images from 1.
   */
  async *list<T>(action: string, params: Record<string, unknown>, firstOffset: number, items: (r: Record<string, unknown>) => T[] | null | undefined, schema: z.ZodMiniType, signal?: AbortSignal): AsyncGenerator<T> {
    const { id, region } = await this.target(signal);
    const walk = this.ctx.api.pages(`${action}`);
    let seen = 0;
    for (let offset = firstOffset; ; offset++) {
      const page = (await this.call(action, { RegistryId: id, ...params, Limit: PAGE_SIZE, Offset: offset }, schema as z.ZodMiniType<{ Response: Record<string, unknown> & { Error?: undefined } }>, region, signal)) as Record<string, unknown>;
      const list = items(page) ?? [];
      yield* list;
      seen += list.length;
      const total = typeof page.TotalCount === 'number' ? page.TotalCount : 0;
      const more = list.length > 0 && seen < total;
      const here = new URL(`${this.url.href}?Action=${action}&Offset=${offset}`);
      if (!walk.next(here, more ? new URL(`${this.url.href}?Action=${action}&Offset=${offset + 1}`) : undefined)) return;
    }
  }

  namespaces(signal?: AbortSignal) {
    return this.list('DescribeNamespaces', {}, 0, (r) => (r.NamespaceList as Array<{ Name: string }> | undefined)?.map((n) => n.Name), namespacesAnswer, signal);
  }

  async namespaceExists(ns: string, signal?: AbortSignal): Promise<boolean> {
    const { id, region } = await this.target(signal);
    const r = await this.call('DescribeNamespaces', { RegistryId: id, NamespaceName: ns }, namespacesAnswer, region, signal);
    return (r.NamespaceList ?? []).some((n) => n.Name === ns);
  }

  repositories(ns: string, signal?: AbortSignal) {
    return this.list('DescribeRepositories', { NamespaceName: ns }, 1, (r) => (r.RepositoryList as Array<{ Name: string }> | undefined)?.map((x) => x.Name), repositoriesAnswer, signal);
  }

  images(ns: string, repository: string, signal?: AbortSignal) {
    return this.list('DescribeImages', { NamespaceName: ns, RepositoryName: repository }, 1, (r) => (r.ImageInfoList as Array<{ ImageVersion: string }> | undefined)?.map((x) => x.ImageVersion), imagesAnswer, signal);
  }

  async ensureNamespace(ns: string, signal?: AbortSignal): Promise<void> {
    if (await this.namespaceExists(ns, signal)) return;
    const { id, region } = await this.target(signal);
    await this.call('CreateNamespace', { RegistryId: id, NamespaceName: ns, IsPublic: false }, plainAnswer, region, signal);
  }

  async ensureRepository(ns: string, name: string, signal?: AbortSignal): Promise<void> {
    const { id, region } = await this.target(signal);
    const found = await this.call('DescribeRepositories', { RegistryId: id, NamespaceName: ns, RepositoryName: name }, repositoriesAnswer, region, signal);
    if ((found.TotalCount ?? 0) > 0) return;
    await this.call('CreateRepository', { RegistryId: id, NamespaceName: ns, RepositoryName: name }, plainAnswer, region, signal);
  }
}

class TcrSource extends ProviderSource {
  constructor(
    private readonly api: TcrApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const named = namespacesOf(pattern);
    for await (const ns of named ?? this.api.namespaces(signal)) {
      if (named && !(await this.api.namespaceExists(ns, signal))) continue;
      yield* this.api.repositories(ns, signal); // TCR names them `ns/repo`
    }
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    const [ns, ...rest] = repository.split('/');
    return rest.length === 0 ? undefined : this.api.images(ns!, rest.join('/'), signal);
  }
}
