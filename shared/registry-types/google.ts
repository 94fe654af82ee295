import * as z from 'zod/mini';
import type { Credentials } from '../registry/auth.js';
import { settingsError, type RegistryTypeModule, type TypeContext } from './registry-type.js';

/** What a service account key file must hold to be one (GCP's JSON key format; other fields ignored). */
const serviceAccountKey = z.looseObject({
  type: z.literal('service_account'),
  client_email: z.string().check(z.minLength(1)),
  private_key: z.string().check(z.minLength(1)),
});

/**
 * Google Container Registry and Artifact Registry (Harbor's `googlegcr` adapter, the native
 * protocol): Google's token service takes Basic credentials of two kinds, which go there as they
 * are: user `_json_key` with a service account's JSON key as the password (or `_json_key_base64`
 * with it base64-encoded, which Artifact Registry documents), or user `oauth2accesstoken` with an
 * OAuth2 access token. A key that is not a service account key is refused here, before any
 * request, naming the field that is wrong and never showing the key.
 */
export const googleKeys: RegistryTypeModule = (ctx) => {
  if (ctx.credentials) checkGoogleCredentials(ctx, ctx.credentials);
  return {};
};

function checkGoogleCredentials(ctx: TypeContext, c: Credentials): void {
  const user = c.username;
  if (user !== '_json_key' && user !== '_json_key_base64') {
    if (user === 'oauth2accesstoken' && c.password.trim() === '') throw settingsError(ctx, 'credential: oauth2accesstoken needs an access token as the password');
    return;
  }
  let text = c.password;
  if (user === '_json_key_base64') {
    text = Buffer.from(c.password.trim(), 'base64').toString('utf8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw settingsError(ctx, `credential: the password of ${user} must be a service account key (${user === '_json_key' ? 'its JSON' : 'its JSON, base64-encoded'}); it is not JSON`);
  }
  const checked = serviceAccountKey.safeParse(json);
  if (!checked.success) {
    const field = checked.error.issues[0]?.path.join('.') ?? 'type';
    throw settingsError(ctx, `credential: the password of ${user} is not a service account key (field "${field}" missing or wrong; expected type "service_account", client_email, private_key)`);
  }
}
