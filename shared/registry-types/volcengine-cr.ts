import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { namespacesOf, ProviderSource } from './provider-source.js';
import { oncePerKey } from '../util/once-per-key.js';
import { expiringCredentials } from './expiring-credentials.js';
import { apiUrl, providerError, type ProviderCredential } from './provider-api.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';
import { volcHeaders } from './signing/volcengine.js';

/** Volcengine's OpenAPI gateway. */
export const VOLCENGINE_API = 'https://open.volcengineapi.com';
const VERSION = '2022-05-12';
const PAGE_SIZE = 100; // Harbor's MaxPageSize

/** `<registry>-<region>.cr.volces.com` (or `.ivolces.com`, the VPC address): Harbor's `getRegionRegistryName`. */
export function parseVolcHost(host: string): { registry: string; region: string } | undefined {
  const m = /^(.+)-(cn-[a-z0-9-]+)\.cr\.i?volces\.com$/.exec(host);
  return m ? { registry: m[1]!, region: m[2]! } : undefined;
}

/** Every answer: `{ResponseMetadata: {Error?: {Code, Message}}, Result}`. */
const envelope = <T extends z.ZodMiniType>(result: T) =>
  z.looseObject({
    ResponseMetadata: z.optional(z.looseObject({ Error: z.optional(z.looseObject({ Code: z.optional(z.string()), Message: z.optional(z.string()) })) })),
    Result: z.optional(z.nullable(result)),
  });
const listOf = <T extends z.ZodMiniType>(item: T) => envelope(z.looseObject({ TotalCount: z.optional(z.number()), Items: z.optional(z.nullable(z.array(item))) }));
const tokenAnswer = envelope(z.looseObject({ Username: z.optional(z.string()), Token: z.optional(z.string()), ExpireTime: z.optional(z.string()) }));
const namesAnswer = listOf(z.looseObject({ Name: z.string() }));
const plainAnswer = envelope(z.unknown());

function volcError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const e = (json as { ResponseMetadata?: { Error?: { Code?: unknown; Message?: unknown } } } | null)?.ResponseMetadata?.Error;
  return e ? { code: e.Code, message: e.Message } : undefined;
}

/**
 * Volcengine Container Registry (Harbor's `volcenginecr` adapter), through Volcengine's OpenAPI
 * (`cr`, version 2022-05-12) signed with HMAC-SHA256 (signing/volcengine.ts; no SDK). The
 * credential is an AccessKey pair; the registry name and region come from the URL
 * (`<registry>-<region>.cr.volces.com`) or `instance` and `region`:
 * - GetAuthorizationToken gives a user and token, the registry's Basic credential at its token
 *   realm, asked again before `ExpireTime`;
 * - listing: ListNamespaces (the filter's first component when it names existing ones),
 *   ListRepositories per namespace, ListTags per repository, pages of 100;
 * - with `create_repositories`: CreateNamespace and CreateRepository when missing. A Volcengine
 *   repository is `<namespace>/<name>`: at least two components (Harbor refuses fewer).
 */
export const volcengineCr: RegistryTypeModule = (ctx) => {
  const api = new VolcApi(ctx);
  const namespace = oncePerKey((ns) => api.ensureNamespace(ns));
  return {
    credentials: ctx.credentials ? expiringCredentials(() => api.token(), ctx.now) : undefined,
    source: (client) => new VolcSource(api, client),
    prepare: async (repository, signal) => {
      const [ns, ...rest] = repository.split('/');
      if (rest.length === 0) throw new ReplicatorError('DESTINATION_NAME', `${ctx.name}: a Volcengine CR repository is <namespace>/<name>, not "${repository}"`);
      await namespace(ns!);
      await api.ensureRepository(ns!, rest.join('/'), signal);
    },
  };
};

class VolcApi {
  readonly registry: string;
  readonly region: string;
  private readonly base: URL;

  constructor(readonly ctx: TypeContext) {
    const fromHost = parseVolcHost(ctx.origin.hostname);
    const registry = ctx.registry.instance ?? fromHost?.registry;
    const region = ctx.registry.region ?? fromHost?.region;
    if (!registry || !region) throw settingsError(ctx, 'the URL is not <registry>-<region>.cr.volces.com: set instance (the registry name) and region');
    this.registry = registry;
    this.region = region;
    this.base = new URL(ctx.registry.api_url ?? VOLCENGINE_API);
  }

  async call<T>(action: string, params: Record<string, unknown>, schema: z.ZodMiniType<{ Result?: T | null | undefined }>, signal?: AbortSignal): Promise<T | undefined> {
    const key = this.ctx.credentials;
    if (!key) throw settingsError(this.ctx, 'credential: volcengine-cr needs an AccessKey pair (user: AccessKey ID, password: secret)');
    const url = apiUrl(this.base, [], { Action: action, Version: VERSION });
    const body = JSON.stringify({ Registry: this.registry, ...params });
    const credential: ProviderCredential = {
      origin: this.base.origin,
      headers: () =>
        volcHeaders({
          accessKeyId: key.username,
          secretAccessKey: key.password,
          service: 'cr',
          region: this.region,
          method: 'POST',
          url,
          date: new Date(this.ctx.now()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z'),
          body,
          contentType: 'application/json; charset=utf-8',
        }),
    };
    const res = await this.ctx.api.json({ method: 'POST', url, body, credential, signal }, schema, `Volcengine CR ${action}`, { errorOf: volcError });
    const error = volcError(res.data);
    if (error) throw providerError(res.status, 'POST', res.url, error, `${this.ctx.name}: Volcengine CR ${action} failed`);
    return res.data.Result ?? undefined;
  }

  async token() {
    const r = await this.call('GetAuthorizationToken', {}, tokenAnswer);
    if (!r?.Username || !r.Token) throw new ReplicatorError('AUTH_TOKEN', `${this.ctx.name}: Volcengine CR GetAuthorizationToken answered no user or token`);
    const expiresAt = r.ExpireTime ? Date.parse(r.ExpireTime) : Number.NaN;
    return { credentials: { username: r.Username, password: r.Token }, expiresAt: Number.isFinite(expiresAt) ? expiresAt : this.ctx.now() + 60 * 60_000 };
  }

  /** Every name of a listing action, pages of 100 until TotalCount (bounded). */
  async *names(action: string, params: Record<string, unknown>, signal?: AbortSignal): AsyncGenerator<string> {
    const walk = this.ctx.api.pages(action);
    let seen = 0;
    for (let page = 1; ; page++) {
      const r = await this.call(action, { ...params, PageSize: PAGE_SIZE, PageNumber: page }, namesAnswer, signal);
      const items = r?.Items ?? [];
      for (const i of items) yield i.Name;
      seen += items.length;
      const here = new URL(`volc:${action}?page=${page}`);
      if (!walk.next(here, items.length > 0 && seen < (r?.TotalCount ?? 0) ? new URL(`volc:${action}?page=${page + 1}`) : undefined)) return;
    }
  }

  async namespaceExists(ns: string, signal?: AbortSignal): Promise<boolean> {
    const r = await this.call('ListNamespaces', { Filter: { Names: [ns] } }, namesAnswer, signal);
    return (r?.TotalCount ?? 0) > 0;
  }

  async ensureNamespace(ns: string, signal?: AbortSignal): Promise<void> {
    if (await this.namespaceExists(ns, signal)) return;
    await this.call('CreateNamespace', { Name: ns }, plainAnswer, signal);
  }

  async ensureRepository(ns: string, name: string, signal?: AbortSignal): Promise<void> {
    const r = await this.call('ListRepositories', { Filter: { Names: [name], Namespaces: [ns] } }, namesAnswer, signal);
    if ((r?.TotalCount ?? 0) > 0) return;
    await this.call('CreateRepository', { Namespace: ns, Name: name }, plainAnswer, signal);
  }
}

class VolcSource extends ProviderSource {
  constructor(
    private readonly api: VolcApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const named = namespacesOf(pattern);
    for await (const ns of named ?? this.api.names('ListNamespaces', {}, signal)) {
      if (named && !(await this.api.namespaceExists(ns, signal))) continue;
      for await (const repo of this.api.names('ListRepositories', { Filter: { Namespaces: [ns] } }, signal)) yield `${ns}/${repo}`;
    }
  }

  protected override tagsOf(repository: string, signal?: AbortSignal) {
    const [ns, ...rest] = repository.split('/');
    return rest.length === 0 ? undefined : this.api.names('ListTags', { Namespace: ns, Repository: rest.join('/') }, signal);
  }
}
