import { ReplicatorError } from '../errors.js';
import type { SecretStore, SecretWriter } from './ports.js';
import type { Credentials } from '../registry/auth.js';
import type { ApiCredentialInput, StoredApiCredential } from './api-registry.js';
import { seal, unseal } from './sealed-secret.js';

/** A credential the API refuses: 400 with this message (it names the field). */
export class ApiCredentialError extends ReplicatorError {
  override name = 'ApiCredentialError';
  constructor(message: string) {
    super('CREDENTIAL_REFUSED', message);
  }
}

/** Where API credentials' secrets are kept and which references they may use. */
export interface ApiSecretsOptions {
  /** serve: literal secrets are encrypted at rest under this key (`api.encryption_key`, AES-256-GCM). */
  encryptionKey?: Buffer | undefined;
  /** AWS: literal secrets are written to Secrets Manager under `prefix` instead. */
  writer?: SecretWriter | undefined;
  /** Reads `{secret}` references (Secrets Manager); without one they cannot be used. */
  reader?: SecretStore | undefined;
  /** `{secret: NAME}` references through the API must be under this prefix... */
  prefix?: string | undefined;
  /** ...or be one of these (`api.allowed_secrets`, names or ARNs, exactly). */
  allowed?: readonly string[] | undefined;
}

/** The associated data a registry's sealed secret is bound to. */
const context = (registry: string) => `harbor-replicator/api/registries/${registry}`;

/**
 * The secrets of API-managed credentials, and the only way they are resolved: decrypting a
 * sealed literal, or reading Secrets Manager for a name the rules allow. There is no branch for
 * environment variables, files or Docker's config (the config file's resolveSecret has those),
 * so an API entry cannot reach them, whatever it holds.
 */
export class ApiSecrets {
  constructor(private readonly opts: ApiSecretsOptions = {}) {}

  /** The Secrets Manager name of a registry's literal secret (AWS). */
  secretNameOf(registry: string): string {
    return `${this.opts.prefix ?? ''}${registry}`;
  }

  /** Why `{secret: name}` may not be used by an API entry (undefined when it may). */
  referenceProblem(name: string): string | undefined {
    if (this.opts.allowed?.includes(name)) return undefined;
    const prefix = this.opts.prefix;
    if (prefix && !name.startsWith('arn:') && name.startsWith(prefix) && name.length > prefix.length) return undefined;
    return `{secret: ${name}} is neither under the API's secret prefix${prefix ? ` ${prefix}` : ' (none set: api.secret_prefix)'} nor listed in api.allowed_secrets`;
  }

  /**
   * What to store for a credential given through the API (`previous`: the entry's stored one,
   * on a replace). Every check happens before a secret is written anywhere.
   */
  async keep(registry: string, input: ApiCredentialInput | undefined, previous: StoredApiCredential | undefined): Promise<StoredApiCredential | undefined> {
    if (!input) return undefined;
    if ('username' in input) {
      const problem = this.referenceProblem(input.password.secret);
      if (problem) throw new ApiCredentialError(`credential.password: ${problem}`);
      if (!this.opts.reader) throw new ApiCredentialError('credential.password: {secret: NAME} needs AWS Secrets Manager, which this service does not use');
      return { username: input.username, password: { secret: input.password.secret } };
    }
    if (input.access_secret === undefined) {
      // A replace without the secret keeps the stored one.
      if (previous && 'type' in previous) return { ...previous, access_key: input.access_key };
      throw new ApiCredentialError('credential.access_secret: is required (there is no stored secret to keep)');
    }
    if (this.opts.writer) {
      if (!this.opts.prefix) throw new ApiCredentialError('credential.access_secret: literal secrets need a Secrets Manager prefix to be written under (the stack sets API_SECRET_PREFIX from api.secret_prefix); none is set');
      const name = this.secretNameOf(registry);
      await this.opts.writer.put(name, input.access_secret, { 'harbor-replicator:managed-by': 'api', 'harbor-replicator:registry': registry });
      return { type: 'basic', access_key: input.access_key, access_secret: { secret: name } };
    }
    if (this.opts.encryptionKey) {
      return { type: 'basic', access_key: input.access_key, access_secret: { sealed: seal(this.opts.encryptionKey, input.access_secret, context(registry)) } };
    }
    throw new ApiCredentialError(
      'credential.access_secret: literal secrets through the API need api.encryption_key in the config file (32 random bytes in base64) to be kept encrypted; none is set',
    );
  }

  /** The credentials of a stored API credential. Errors name the registry and the secret, never a value. */
  async resolve(registry: string, stored: StoredApiCredential): Promise<Credentials> {
    if ('username' in stored) return { username: stored.username, password: await this.read(registry, stored.password.secret) };
    const secret = stored.access_secret;
    if ('secret' in secret) return { username: stored.access_key, password: await this.read(registry, secret.secret) };
    if (!this.opts.encryptionKey) {
      throw new ReplicatorError('SECRET_UNAVAILABLE', `registry "${registry}" (API): its secret is encrypted and api.encryption_key is not set`);
    }
    return { username: stored.access_key, password: unseal(this.opts.encryptionKey, secret.sealed, context(registry)) };
  }

  /** A secret an API entry names (its private CA), read under the same rules as its credentials. */
  readAllowed(registry: string, name: string): Promise<string> {
    return this.read(registry, name);
  }

  private async read(registry: string, name: string): Promise<string> {
    // Checked again here: an entry written by another version, or by hand, gets no further.
    const problem = this.referenceProblem(name);
    if (problem) throw new ReplicatorError('SECRET_REFUSED', `registry "${registry}" (API): ${problem}`);
    if (!this.opts.reader) throw new ReplicatorError('SECRET_UNAVAILABLE', `registry "${registry}" (API): {secret: ${name}} needs AWS Secrets Manager, which this service does not use`);
    try {
      return await this.opts.reader.get(name);
    } catch (err) {
      throw new ReplicatorError('SECRET_MISSING', `registry "${registry}" (API): cannot read secret ${name}: ${(err as Error).message}`, { cause: err });
    }
  }
}
