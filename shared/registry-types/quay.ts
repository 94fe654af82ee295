import * as z from 'zod/mini';
import type { Credentials } from '../registry/auth.js';
import { RegistryError } from '../registry/errors.js';
import { RegistrySource } from '../sources/registry-source.js';
import { apiUrl, type ProviderCredential } from './provider-api.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';

/** Harbor's Quay credential: a JSON document as the secret (`access_key` "json_file"). */
const harborJson = z.looseObject({
  account_name: z.optional(z.string()),
  docker_cli_password: z.optional(z.string()),
  oauth2_token: z.optional(z.string()),
});

/** The credential and API token of a Quay registry, from Harbor's JSON form or from user, password and `api_token`. */
export function quayCredentials(c: Credentials | undefined, apiToken: string | undefined): { registry: Credentials | undefined; apiToken: string | undefined } {
  if (c && c.password.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(c.password);
    } catch {
      json = undefined;
    }
    const parsed = harborJson.safeParse(json);
    if (parsed.success && parsed.data.account_name) {
      return {
        registry: { username: parsed.data.account_name, password: parsed.data.docker_cli_password ?? '' },
        apiToken: apiToken ?? (parsed.data.oauth2_token || undefined),
      };
    }
  }
  return { registry: c, apiToken };
}

/**
 * Quay (Harbor's `quay` adapter): a robot account's Basic credential (`org+robot` and its token),
 * exchanged at Quay's token service like any realm, with two differences Harbor makes too:
 * - the catalog's token is asked without the `registry:catalog:*` scope, which Quay's token
 *   service refuses (goharbor/harbor#13200);
 * - with `create_repositories`, a missing organization is created through Quay's API
 *   (`GET /api/v1/organization/{name}`, then `POST /api/v1/organization/` with the name and
 *   `<name>@quay.io`), with an OAuth2 application token: `api_token`, or `oauth2_token` in
 *   Harbor's JSON credential (`{account_name, docker_cli_password, oauth2_token}` as the secret).
 */
export const quay: RegistryTypeModule = (ctx) => {
  const { registry, apiToken } = quayCredentials(ctx.credentials, ctx.apiToken);
  return {
    credentials: registry,
    source: (client) => new RegistrySource(client, 1000, { catalog: [] }),
    prepare: organizations(ctx, apiToken),
  };
};

function organizations(ctx: TypeContext, token: string | undefined) {
  const api = ctx.registry.api_url ? new URL(ctx.registry.api_url) : ctx.origin;
  const base = new URL(api.pathname.replace(/\/?$/, '/api/v1/'), api);
  const credential: ProviderCredential | undefined = token ? { origin: base.origin, headers: () => ({ authorization: `Bearer ${token}` }) } : undefined;
  const answer = z.unknown();
  return async (repository: string, signal?: AbortSignal): Promise<void> => {
    if (!credential) {
      throw settingsError(ctx, "create_repositories needs Quay's OAuth2 application token to create organizations: set api_token (or oauth2_token in Harbor's JSON credential)");
    }
    const org = repository.split('/', 1)[0]!;
    const found = await ctx.api.json({ method: 'GET', url: apiUrl(base, ['organization', org]), credential, signal }, answer, `organization ${org}`, { ok: [200, 404], errorOf: quayError });
    if (found.status === 200) return;
    try {
      await ctx.api.json(
        { method: 'POST', url: apiUrl(base, ['organization'], {}, true), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: org, email: `${org}@quay.io` }), credential, signal },
        answer,
        `creating organization ${org}`,
        { ok: [200, 201], errorOf: quayError },
      );
    } catch (err) {
      // Created meanwhile by another copy: Quay says so with a 400; check once more.
      if (err instanceof RegistryError && err.status === 400) {
        const again = await ctx.api.json({ method: 'GET', url: apiUrl(base, ['organization', org]), credential, signal }, answer, `organization ${org}`, { ok: [200, 404], errorOf: quayError });
        if (again.status === 200) return;
      }
      throw err;
    }
  };
}

/** Quay's API errors: `{error_message, error_type}` (or `{message}`). */
function quayError(json: unknown): { code?: unknown; message?: unknown } | undefined {
  const j = json as { error_type?: unknown; error_message?: unknown; message?: unknown; detail?: unknown } | null;
  if (!j || typeof j !== 'object') return undefined;
  return { code: j.error_type, message: j.error_message ?? j.message ?? j.detail };
}
