import type { Credentials, CredentialsProvider } from '../registry/auth.js';

/** A registry credential a provider issued, and when it lapses (ms since the epoch). */
export interface IssuedCredentials {
  credentials: Credentials;
  expiresAt: number;
}

/** Ask again this long before a credential lapses, so no request starts with one about to expire. */
const REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * Registry credentials a cloud API issues for a while (ACR's temporary user, TCR's instance
 * token, Volcengine's authorization token, Docker Hub's API token): fetched on first use, shared
 * by concurrent callers, kept until shortly before they lapse (a short-lived one for half its
 * life), and never kept after a failure, so the next request asks again.
 */
export function expiringCredentials(issue: () => Promise<IssuedCredentials>, now: () => number = Date.now): CredentialsProvider {
  let cached: { credentials: Credentials; refreshAt: number } | undefined;
  let pending: Promise<Credentials> | undefined;
  return () => {
    if (cached && now() < cached.refreshAt) return Promise.resolve(cached.credentials);
    pending ??= issue()
      .then((c) => {
        const issuedAt = now();
        const margin = Math.min(REFRESH_MARGIN_MS, Math.max(0, (c.expiresAt - issuedAt) / 2));
        cached = { credentials: c.credentials, refreshAt: c.expiresAt - margin };
        return c.credentials;
      })
      .finally(() => (pending = undefined));
    return pending;
  };
}
