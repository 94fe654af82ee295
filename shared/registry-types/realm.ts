import { ReplicatorError } from '../errors.js';
import { parseChallenge, type Challenge } from '../registry/challenge.js';
import { remoteText } from '../registry/errors.js';
import { apiUrl } from './provider-api.js';
import type { TypeContext } from './registry-type.js';

/**
 * The registry's Bearer challenge (`GET /v2/` without credentials), as Harbor's `util.Ping` reads
 * it: GitLab's API lives where its token realm is, Alibaba's service names the region and
 * instance. The realm is held to the rule the registry client holds it to before sending it
 * credentials: https, or plain http on the registry's own host only.
 */
export async function bearerChallenge(ctx: TypeContext, signal?: AbortSignal): Promise<{ realm: URL; service: string | undefined; challenge: Challenge }> {
  const res = await ctx.api.call({ method: 'GET', url: apiUrl(ctx.origin, ['v2'], {}, true), signal });
  const challenge = res.status === 401 ? parseChallenge(res.headers['www-authenticate']) : undefined;
  if (!challenge || challenge.scheme !== 'bearer' || !challenge.params.realm) {
    throw new ReplicatorError('AUTH_CHALLENGE', `${ctx.name}: the registry's /v2/ answered ${res.status} without a Bearer challenge naming a token realm`);
  }
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm, ctx.origin);
  } catch {
    throw new ReplicatorError('AUTH_CHALLENGE', `${ctx.name}: invalid token realm "${remoteText(challenge.params.realm)}"`);
  }
  const plainElsewhere = realm.protocol === 'http:' && realm.hostname !== ctx.origin.hostname;
  if ((realm.protocol !== 'https:' && realm.protocol !== 'http:') || plainElsewhere || (realm.protocol === 'http:' && ctx.origin.protocol === 'https:' && !ctx.registry.insecure)) {
    throw new ReplicatorError('AUTH_CHALLENGE', `${ctx.name}: token realm ${realm.origin} is not https (plain http only on the registry's own host); refusing to send credentials`);
  }
  return { realm, service: challenge.params.service, challenge };
}
