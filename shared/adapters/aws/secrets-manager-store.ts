import { CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand, ResourceExistsException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ReplicatorError } from '../../errors.js';
import type { SecretStore, SecretWriter } from '../../rules/ports.js';

/** How long a secret value is used before it is read again (a rotation shows up within this). */
export const SECRET_TTL_MS = 5 * 60_000;

/** Where SecretsManagerStore reads. */
export interface SecretsManagerStoreOptions {
  client: SecretsManagerClient;
  ttlMs?: number;
  now?: () => number;
}

/**
 * The SecretStore over AWS Secrets Manager (GetSecretValue, current version). A warm Lambda
 * reads each secret once per TTL instead of once per request, concurrent readers of a secret
 * share one call, and a failure is not cached. String secrets only. Errors name the secret,
 * never a value. Also the SecretWriter: CreateSecret, or PutSecretValue when it exists.
 */
export class SecretsManagerStore implements SecretStore, SecretWriter {
  private readonly cache = new Map<string, { value: string; until: number }>();
  private readonly pending = new Map<string, Promise<string>>();
  private readonly ttl: number;
  private readonly now: () => number;

  constructor(private readonly opts: SecretsManagerStoreOptions) {
    this.ttl = opts.ttlMs ?? SECRET_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  get(nameOrArn: string): Promise<string> {
    const cached = this.cache.get(nameOrArn);
    if (cached && this.now() < cached.until) return Promise.resolve(cached.value);
    let p = this.pending.get(nameOrArn);
    if (!p) {
      p = this.read(nameOrArn)
        .then((value) => {
          this.cache.set(nameOrArn, { value, until: this.now() + this.ttl });
          return value;
        })
        .finally(() => this.pending.delete(nameOrArn));
      this.pending.set(nameOrArn, p);
    }
    return p;
  }

  async put(name: string, value: string, tags: Record<string, string> = {}): Promise<void> {
    try {
      try {
        await this.opts.client.send(
          new CreateSecretCommand({ Name: name, SecretString: value, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }),
        );
      } catch (err) {
        if (!(err instanceof ResourceExistsException)) throw err;
        await this.opts.client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
      }
    } catch (err) {
      const e = err as Error;
      throw new ReplicatorError('SECRET_UNWRITABLE', `Secrets Manager secret "${name}": ${e.name}: ${e.message}`, { cause: err });
    }
    // This container reads the new value at once; others within the TTL.
    this.pending.delete(name);
    this.cache.set(name, { value, until: this.now() + this.ttl });
  }

  private async read(secretId: string): Promise<string> {
    let out;
    try {
      out = await this.opts.client.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (err) {
      const e = err as Error;
      throw new ReplicatorError('SECRET_UNREADABLE', `Secrets Manager secret "${secretId}": ${e.name}: ${e.message}`, { cause: err });
    }
    if (typeof out.SecretString === 'string') return out.SecretString;
    if (out.SecretBinary !== undefined) {
      throw new ReplicatorError('SECRET_BINARY', `Secrets Manager secret "${secretId}" is binary; only string secrets (SecretString) are supported`);
    }
    throw new ReplicatorError('SECRET_UNREADABLE', `Secrets Manager secret "${secretId}" has no value`);
  }
}

/** Secrets Manager with the machine's AWS credentials (the default chain), for a local host (`run`, `serve`). */
export function localSecretsManager(): SecretStore {
  return new SecretsManagerStore({ client: new SecretsManagerClient({ maxAttempts: 3 }) });
}
