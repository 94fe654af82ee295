import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ReplicatorError } from '../../errors.js';
import type { Credentials } from '../../registry/auth.js';

/** Fetch a new token this long before the current one expires (ECR tokens last 12 hours). */
export const ECR_REFRESH_MARGIN_MS = 30 * 60_000;
/** Assumed lifetime of a token answered without `expiresAt` (ECR always sends one). */
const FALLBACK_LIFETIME_MS = 60 * 60_000;

/** How to get ECR tokens in one region. */
export interface EcrAuthorizationTokensOptions {
  /** An ECR client of the region whose registries the tokens are for. */
  client: ECRClient;
  /** The region, to name it in errors. */
  region: string;
  refreshMarginMs?: number;
  now?: () => number;
}

interface CachedCredentials {
  credentials: Credentials;
  /** Fetch a new token from this time on. */
  refreshAt: number;
}

/**
 * Registry credentials from ECR's GetAuthorizationToken: Basic auth as user `AWS` with the
 * decoded token as password. One token serves every registry the caller may reach in the
 * region, so there is one instance per region. It is cached until `refreshMarginMs` before it
 * expires (so a request never starts with a token about to lapse), concurrent callers share one
 * request, and a failure is not cached: the next caller asks again.
 */
export class EcrAuthorizationTokens {
  private cached: CachedCredentials | undefined;
  private pending: Promise<Credentials> | undefined;
  private readonly margin: number;
  private readonly now: () => number;

  constructor(private readonly opts: EcrAuthorizationTokensOptions) {
    this.margin = opts.refreshMarginMs ?? ECR_REFRESH_MARGIN_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The current credentials, fetched when there are none or they are due for refresh. */
  credentials(): Promise<Credentials> {
    if (this.cached && this.now() < this.cached.refreshAt) return Promise.resolve(this.cached.credentials);
    this.pending ??= this.fetch()
      .then((c) => {
        this.cached = c;
        return c.credentials;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async fetch(): Promise<CachedCredentials> {
    const { region } = this.opts;
    let data;
    try {
      // No registryIds (deprecated): the token is valid for every registry the caller may reach.
      data = (await this.opts.client.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
    } catch (err) {
      const e = err as Error;
      throw new ReplicatorError('ECR_AUTH', `ECR GetAuthorizationToken in ${region} failed: ${e.name}: ${e.message}`, { cause: err });
    }
    const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0 || colon === decoded.length - 1) {
      // Never echo the token, even a malformed one.
      throw new ReplicatorError('ECR_AUTH', `ECR GetAuthorizationToken in ${region} answered no token of the form base64("AWS:<password>")`);
    }
    const fetchedAt = this.now();
    const expiresAt = data?.expiresAt?.getTime() ?? fetchedAt + FALLBACK_LIFETIME_MS;
    // A token shorter-lived than the margin is still used for half its life.
    const margin = Math.min(this.margin, Math.max(0, (expiresAt - fetchedAt) / 2));
    return {
      credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      refreshAt: expiresAt - margin,
    };
  }
}
