import { ReplicatorError } from '../errors.js';
import { parseChallenge, type Challenge } from './challenge.js';
import { RegistryError, remoteText } from './errors.js';
import { readBounded, send, type Headers, type HttpContext, type RequestAuth } from './http.js';

/** Username and password (or token) for a registry. Never logged, never printed. */
export interface Credentials {
  username: string;
  password: string;
}

/**
 * Credentials that expire and are fetched again (AWS ECR's 12-hour tokens): called before each
 * authenticated request, so it must cache; a rejection fails that request.
 */
export type CredentialsProvider = () => Promise<Credentials>;

/** What a registry client is given: fixed credentials, or a provider of fresh ones. */
export type CredentialsSource = Credentials | CredentialsProvider;

/** The current credentials of a source. */
export async function currentCredentials(source: CredentialsSource): Promise<Credentials> {
  return typeof source === 'function' ? source() : source;
}

/** An auth scope, e.g. `repository:library/nginx:pull,push`. */
export type Scope = string;

/** Pull scope on a repository. */
export function pullScope(repository: string): Scope {
  return `repository:${repository}:pull`;
}

/** Pull and push scope on a repository. */
export function pushScope(repository: string): Scope {
  return `repository:${repository}:pull,push`;
}

type Mode =
  | { kind: 'anonymous' }
  | { kind: 'basic' }
  | { kind: 'bearer'; realm: URL; service: string | undefined };

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Tokens are used until this fraction of their lifetime has passed. */
const TOKEN_LIFETIME_USED = 0.9;
/** The distribution token spec: a token without `expires_in` lives 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;

/**
 * The auth handshake of one registry, done once: the `/v2/` ping's challenge picks anonymous,
 * Basic or Bearer; Bearer tokens are fetched per scope set (Basic credentials exchanged at the
 * token realm), cached until they expire, and refreshed once when a request gets a 401 that
 * asks for more (go-containerregistry `transport/bearer.go`).
 */
export class Authenticator {
  private mode: Mode = { kind: 'anonymous' };
  private origin: URL | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly ctx: HttpContext,
    private readonly registry: string,
    private readonly credentials: CredentialsSource | undefined,
    /**
     * When false (TLS verification off), a token realm on the registry's own host may be plain
     * HTTP even for an HTTPS registry. A plain-HTTP realm on another host is refused either way.
     */
    private readonly requireHttpsRealm: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  /** Sets the scheme from the ping's answer (`undefined` = the ping got 200). */
  useChallenge(challenge: Challenge | undefined, origin: URL): void {
    this.origin = origin;
    if (!challenge) {
      // The registry lets anyone in at /v2/; send Basic anyway when we have credentials,
      // as Docker does, since some registries require it per repository.
      this.mode = this.credentials ? { kind: 'basic' } : { kind: 'anonymous' };
      return;
    }
    if (challenge.scheme === 'bearer') {
      const realmText = challenge.params.realm;
      if (!realmText) throw new ReplicatorError('AUTH_CHALLENGE', `${this.registry}: Bearer challenge without realm`);
      let realm: URL;
      try {
        realm = new URL(realmText, origin);
      } catch {
        throw new ReplicatorError('AUTH_CHALLENGE', `${this.registry}: invalid token realm "${remoteText(realmText)}"`);
      }
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
        throw new ReplicatorError('AUTH_CHALLENGE', `${this.registry}: token realm scheme ${remoteText(realm.protocol)} is not allowed`);
      }
      if (realm.protocol === 'http:' && realm.hostname !== origin.hostname) {
        // Our credentials go to the realm: in the clear only to the registry's own host (a
        // token service next to a plain-HTTP registry), whatever `insecure` says.
        throw new ReplicatorError(
          'AUTH_CHALLENGE',
          `${this.registry}: token realm ${realm.origin} is plain HTTP on another host; refusing to send credentials (a realm must be https unless it is on the registry's own host)`,
        );
      }
      if (realm.protocol === 'http:' && origin.protocol === 'https:' && this.requireHttpsRealm) {
        // Never downgrade: credentials would cross the network in the clear.
        throw new ReplicatorError(
          'AUTH_CHALLENGE',
          `${this.registry}: token realm ${realm.origin} is plain HTTP for an HTTPS registry; refusing to send credentials`,
        );
      }
      this.mode = { kind: 'bearer', realm, service: challenge.params.service };
      return;
    }
    if (challenge.scheme === 'basic') {
      this.mode = { kind: 'basic' };
      return;
    }
    throw new ReplicatorError('AUTH_CHALLENGE', `${this.registry}: unsupported auth scheme "${challenge.scheme}"`);
  }

  /** The auth hook for requests that need `scopes` (after the ping: it names the origin). */
  forScopes(scopes: readonly Scope[]): RequestAuth {
    const wanted = new Set(scopes);
    return {
      origin: this.origin?.origin ?? '',
      header: () => this.header([...wanted], false),
      unauthorized: async (headers: Headers) => {
        const challenge = parseChallenge(headers['www-authenticate']);
        const before = this.mode.kind;
        if (challenge && this.origin) this.useChallenge(challenge, this.origin);
        if (this.mode.kind === 'bearer') {
          // insufficient_scope names what the registry wants: ask for it too.
          for (const s of challenge?.params.scope?.split(' ') ?? []) if (s) wanted.add(s);
          await this.header([...wanted], true);
          return true;
        }
        // Basic: retrying with the same credentials cannot help, unless we had sent none.
        return before === 'anonymous' && (this.mode as Mode).kind === 'basic' && this.credentials !== undefined;
      },
    };
  }

  private async header(scopes: Scope[], refresh: boolean): Promise<string | undefined> {
    switch (this.mode.kind) {
      case 'anonymous':
        return undefined;
      case 'basic':
        return this.credentials ? basicHeader(await currentCredentials(this.credentials)) : undefined;
      case 'bearer':
        return `Bearer ${await this.token(this.mode, scopes, refresh)}`;
    }
  }

  private async token(mode: Extract<Mode, { kind: 'bearer' }>, scopes: Scope[], refresh: boolean): Promise<string> {
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (!refresh && cached && cached.expiresAt > this.now()) return cached.value;
    const inflight = this.pending.get(key);
    if (inflight) return inflight;
    const p = this.fetchToken(mode, scopes)
      .then((t) => {
        this.tokens.set(key, t);
        return t.value;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  private async fetchToken(mode: Extract<Mode, { kind: 'bearer' }>, scopes: Scope[]): Promise<CachedToken> {
    const url = new URL(mode.realm);
    if (mode.service) url.searchParams.set('service', mode.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const credentials = this.credentials ? await currentCredentials(this.credentials) : undefined;
    // Basic credentials go to the realm the registry's challenge named, and only there.
    const auth: RequestAuth | undefined = credentials
      ? { origin: mode.realm.origin, header: async () => basicHeader(credentials), unauthorized: async () => false }
      : undefined;
    let res;
    try {
      res = await send(this.ctx, { method: 'GET', url, headers: { accept: 'application/json' }, expect: [200], ...(auth ? { auth } : {}) });
    } catch (err) {
      if (err instanceof RegistryError && (err.status === 401 || err.status === 403)) {
        const who = credentials ? `user "${credentials.username}"` : 'anonymous access';
        throw new RegistryError({
          status: err.status,
          method: 'GET',
          url,
          errors: err.errors.length > 0 ? err.errors : [{ code: 'UNAUTHORIZED' }],
          retryable: false,
          message: `token service of ${this.registry} rejected ${who}`,
          cause: err,
        });
      }
      throw err;
    }
    const text = await readBounded(res.body, 1024 * 1024);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new ReplicatorError('AUTH_TOKEN', `token service of ${this.registry} answered something that is not JSON`);
    }
    const value = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!value) throw new ReplicatorError('AUTH_TOKEN', `token service of ${this.registry} answered without a token`);
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    // Use our own clock: issued_at comes from another machine's.
    return { value, expiresAt: this.now() + seconds * 1000 * TOKEN_LIFETIME_USED };
  }
}

/** `Basic base64(user:password)`. */
export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
