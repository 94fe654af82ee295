import * as z from 'zod/mini';
import type { RegistryClient } from '../registry/client.js';
import { namespacesOf, ProviderSource } from './provider-source.js';
import { basicOnOrigin } from './basic.js';
import { apiUrl, nextLinkOf, type ProviderCredential } from './provider-api.js';
import type { RegistryTypeModule, TypeContext } from './registry-type.js';

/** Artifactory repository package types that serve the Docker API (Harbor's default list). */
const IMAGE_TYPES = new Set(['docker', 'oci', 'helm', 'helm-oci']);

const repositoriesAnswer = z.array(z.looseObject({ key: z.string(), packageType: z.optional(z.string()) }));
const catalogAnswer = z.looseObject({ repositories: z.optional(z.nullable(z.array(z.string()))) });

/** Artifactory's API errors: `{errors: [{status, message}]}`. */
function artifactoryError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const first = (json as { errors?: Array<{ message?: unknown }> } | null)?.errors?.[0];
  return first ? { message: first.message } : undefined;
}

/**
 * JFrog Artifactory (Harbor's `jfrog` adapter). An image's first path component is the
 * Artifactory repository key (`<key>/<image>`, the repository path method), so a destination
 * path needs at least two components. The registry takes a user with a password or an access
 * token (Basic, or at the token realm its challenge names); the REST API takes the same as Basic:
 * - listing: the repository keys (`GET /artifactory/api/repositories`), and for each of an image
 *   type its catalog (`/artifactory/api/<type>/<key>/v2/_catalog`, `Link` pages), names prefixed
 *   with the key; tags from the registry;
 * - with `create_repositories`, a missing key is created as a local Docker repository
 *   (`PUT /artifactory/api/repositories/<key>`, Harbor's `simple-default` layout);
 * - blobs are pushed as Harbor's adapter pushes them to Artifactory: one PATCH, then the PUT
 *   without a body (the upload trait in rules/registry-types.ts).
 */
export const jfrogArtifactory: RegistryTypeModule = (ctx) => {
  const api = new ArtifactoryApi(ctx);
  return {
    source: (client) => new ArtifactorySource(api, client),
    prepare: (repository, signal) => api.ensureKey(repository.split('/', 1)[0]!, signal),
  };
};

class ArtifactoryApi {
  readonly base: URL;
  readonly credential: ProviderCredential | undefined;

  constructor(readonly ctx: TypeContext) {
    const url = new URL(ctx.registry.api_url ?? ctx.registry.url ?? ctx.origin);
    this.base = new URL(url.pathname.replace(/\/?$/, '/artifactory/api/'), url);
    this.credential = basicOnOrigin(ctx, this.base);
  }

  async repositories(signal?: AbortSignal) {
    const res = await this.ctx.api.json({ method: 'GET', url: apiUrl(this.base, ['repositories']), credential: this.credential, signal }, repositoriesAnswer, 'repositories', { errorOf: artifactoryError });
    return res.data;
  }

  /** The images of one repository key, through its Docker API's catalog. */
  async *catalog(key: string, packageType: string, signal?: AbortSignal): AsyncGenerator<string> {
    const walk = this.ctx.api.pages(`${key} catalog`);
    let url: URL | undefined = apiUrl(this.base, [packageType, key, 'v2', '_catalog'], { n: 1000 });
    while (url) {
      const res = await this.ctx.api.json({ method: 'GET', url, credential: this.credential, signal }, catalogAnswer, `${key} catalog`, { errorOf: artifactoryError });
      for (const name of res.data.repositories ?? []) yield `${key}/${name}`;
      url = walk.next(url, nextLinkOf(res.headers, res.url));
    }
  }

  async ensureKey(key: string, signal?: AbortSignal): Promise<void> {
    if ((await this.repositories(signal)).some((r) => r.key === key)) return;
    await this.ctx.api.json(
      {
        method: 'PUT',
        url: apiUrl(this.base, ['repositories', key]),
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, rclass: 'local', packageType: 'docker', repoLayoutRef: 'simple-default' }),
        credential: this.credential,
        signal,
      },
      z.unknown(),
      `creating repository key ${key}`,
      { ok: [200, 201], errorOf: artifactoryError },
    ).catch(async (err: unknown) => {
      // Created meanwhile by another copy: fine.
      if ((await this.repositories(signal)).some((r) => r.key === key)) return;
      throw err;
    });
  }
}

class ArtifactorySource extends ProviderSource {
  constructor(
    private readonly api: ArtifactoryApi,
    client: RegistryClient,
  ) {
    super(client);
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const keys = namespacesOf(pattern);
    for (const repo of await this.api.repositories(signal)) {
      const type = (repo.packageType ?? '').toLowerCase();
      if (!IMAGE_TYPES.has(type) || (keys && !keys.includes(repo.key))) continue;
      yield* this.api.catalog(repo.key, type, signal);
    }
  }
}
