import { basicHeader } from '../registry/auth.js';
import type { ProviderCredential } from './provider-api.js';
import type { TypeContext } from './registry-type.js';

/** The registry's own credential as Basic auth on its own origin (Artifactory's, DTR's, SWR's APIs live there). */
export function basicOnOrigin(ctx: TypeContext, base: URL): ProviderCredential | undefined {
  const c = ctx.credentials;
  if (!c) return undefined;
  const value = basicHeader(c);
  return { origin: base.origin, headers: () => ({ authorization: value }) };
}
