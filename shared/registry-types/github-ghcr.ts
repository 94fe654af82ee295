import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { namespacesOf, ProviderSource } from './provider-source.js';
import { apiUrl, nextLinkOf, type ProviderCredential } from './provider-api.js';
import type { RegistryTypeModule, TypeContext } from './registry-type.js';

/** GitHub's REST API (GitHub Enterprise Server: `api_url: https://HOST/api/v3`). */
export const GITHUB_API = 'https://api.github.com';

const packagesAnswer = z.array(z.looseObject({ name: z.string() }));

/** GitHub's API errors: `{message, documentation_url}`. */
function githubError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as { message?: unknown } | null;
  return j && typeof j === 'object' ? { message: j.message } : undefined;
}

/**
 * GitHub Container Registry (Harbor's `githubcr` adapter): ghcr.io's token service takes the
 * GitHub user and a personal access token (`read:packages`, `write:packages` to push) as Basic
 * credentials, like any realm. ghcr.io serves no `_catalog`: Harbor lists only repositories the
 * name filter names exactly. Here a filter with wildcards is listed through GitHub's packages API
 * (`GET /orgs/{owner}/packages?package_type=container`, or `/users/{owner}/...` for a user),
 * with the PAT as a Bearer for api.github.com only and its `Link` pages; the owner (the filter's
 * first component) must be named. Tags come from the registry (`tags/list`), as Harbor's.
 */
export const githubGhcr: RegistryTypeModule = (ctx) => ({
  source: (client) => new GhcrSource(ctx, client),
});

class GhcrSource extends ProviderSource {
  private readonly base: URL;
  private readonly credential: ProviderCredential | undefined;

  constructor(
    private readonly ctx: TypeContext,
    client: RegistryClient,
  ) {
    super(client);
    this.base = new URL(ctx.registry.api_url ?? GITHUB_API);
    const pat = ctx.credentials?.password;
    this.credential = pat ? { origin: this.base.origin, headers: () => ({ authorization: `Bearer ${pat}` }) } : undefined;
  }

  protected async *listed(pattern: string, signal?: AbortSignal): AsyncIterable<string> {
    const owners = namespacesOf(pattern);
    if (!owners) {
      throw new ReplicatorError(
        'LISTING_UNSUPPORTED',
        `${this.ctx.name}: ghcr.io has no catalog, and GitHub lists packages per owner: the name filter must name the owner (its first component, without wildcards), e.g. my-org/**`,
      );
    }
    for (const owner of owners) {
      for await (const pkg of this.packages(owner, signal)) yield `${owner}/${pkg}`.toLowerCase();
    }
  }

  /** The container packages of an organization, or of a user when no organization has that name. */
  private async *packages(owner: string, signal?: AbortSignal): AsyncGenerator<string> {
    const query = { package_type: 'container', per_page: 100 };
    const walk = this.ctx.api.pages(`${owner} packages`);
    let kind: 'orgs' | 'users' = 'orgs';
    let first = true;
    let url: URL | undefined = apiUrl(this.base, [kind, owner, 'packages'], query);
    while (url) {
      const res = await this.ctx.api.json(
        { method: 'GET', url, headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' }, credential: this.credential, signal },
        packagesAnswer,
        `${kind} ${owner} packages`,
        { ok: [200, 404], errorOf: githubError },
      );
      if (res.status === 404) {
        if (!first || kind === 'users') return;
        kind = 'users'; // no organization of that name: a user's packages
        url = apiUrl(this.base, [kind, owner, 'packages'], query);
        continue;
      }
      first = false;
      for (const p of res.data) yield p.name;
      url = walk.next(url, nextLinkOf(res.headers, res.url));
    }
  }
}
