import * as z from 'zod/mini';
import { describeIssue } from '../util/schema.js';
import { registrySchema, type RegistryConfig } from './config-schema.js';
import { sealedSecretSchema, type SealedSecret } from './sealed-secret.js';

/**
 * Registries managed through the API. Their callers are not the operator: a credential is a
 * literal (Harbor's `{type: "basic", access_key, access_secret}`, kept encrypted or in Secrets
 * Manager) or a `{secret: NAME}` reference, never an environment variable, a file or Docker's
 * config, and the server's files (`ca_file`) are out of reach. Their credentials have their own
 * types, resolved by their own function (api-secrets.ts), never by the config file's.
 */

/** A credential as an API request gives it. */
export type ApiCredentialInput =
  | { type: 'basic'; access_key: string; access_secret?: string | undefined }
  | { username: string; password: { secret: string } };

/** A credential as an API registry keeps it. */
export type StoredApiCredential =
  | { type: 'basic'; access_key: string; access_secret: { sealed: SealedSecret } | { secret: string } }
  | { username: string; password: { secret: string } };

/** A credential as GET shows it: never the secret, nor its encrypted form. */
export type PublicApiCredential = { type: 'basic'; access_key: string; has_secret: true } | { username: string; password: { secret: string } };

const text = z.string().check(z.minLength(1));
const referenceSchema = z.strictObject({ username: text, password: z.strictObject({ secret: text }) });
const literalInputSchema = z.strictObject({ type: z.literal('basic'), access_key: text, access_secret: z.optional(text) });
const literalStoredSchema = z.strictObject({
  type: z.literal('basic'),
  access_key: text,
  access_secret: z.union([z.strictObject({ sealed: sealedSecretSchema }), z.strictObject({ secret: text })]),
});

const SHAPES = 'must be {type: "basic", access_key, access_secret} or {username, password: {secret: NAME}}';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the API refuses in a credential, as `credential.<field>: <why>`; undefined when it is one of the two forms. */
function credentialProblem(c: unknown, stored: boolean): string | undefined {
  if (!isObject(c)) return `credential: ${SHAPES}`;
  if ('docker_config' in c) return "credential.docker_config: Docker's config file on the server is not allowed through the API";
  if ('password' in c || 'username' in c) {
    const p = c.password;
    if (isObject(p)) {
      const kinds = Object.keys(p);
      const other = kinds.find((k) => k !== 'secret');
      if (other) return `credential.password: references of kind ${other} are not allowed through the API (only {secret: NAME}, or a literal as {type: "basic", access_key, access_secret})`;
    } else if (p !== undefined) {
      return 'credential.password: must be {secret: NAME}; a literal password goes in {type: "basic", access_key, access_secret}';
    }
  }
  if ('type' in c && c.type !== 'basic') return 'credential.type: only "basic" is supported';
  const literal = 'type' in c || 'access_key' in c || 'access_secret' in c;
  const schema = literal ? (stored ? literalStoredSchema : literalInputSchema) : referenceSchema;
  const parsed = schema.safeParse(c);
  return parsed.success ? undefined : describeIssue(parsed.error, 'credential');
}

function parseCredential<T>(c: Record<string, unknown>, stored: boolean): T {
  const literal = 'type' in c || 'access_key' in c || 'access_secret' in c;
  return (literal ? (stored ? literalStoredSchema : literalInputSchema) : referenceSchema).parse(c) as T;
}

/** A registry body from the API: the registry (validated like the config file's, without credential) and its credential. */
export type ApiRegistryInput = { registry: RegistryConfig; credential: ApiCredentialInput | undefined };

/** A problem, with the path it names first. */
export type Refused = { problem: string };

function parseRegistry(body: Record<string, unknown>): RegistryConfig | Refused {
  if ('ca_file' in body) return { problem: 'ca_file: files on the server are not allowed through the API; give the CA as ca: {secret: NAME}' };
  if ('proxy_url' in body) return { problem: "proxy_url: a registry's proxy is the operator's choice: set it in the config file" };
  // A reference would reach the server's environment or files; Quay's token goes in Harbor's JSON credential instead.
  if ('api_token' in body) return { problem: "api_token: not allowed through the API; for Quay, give Harbor's JSON credential ({account_name, docker_cli_password, oauth2_token}) as access_secret" };
  if (isObject(body.ca) && 'file' in body.ca) return { problem: 'ca: files on the server are not allowed through the API; give the CA as ca: {secret: NAME}' };
  const { credential: _credential, ...rest } = body;
  const parsed = registrySchema.safeParse(rest);
  return parsed.success ? parsed.data : { problem: describeIssue(parsed.error) };
}

/** Validates a registry given through the API. */
export function parseApiRegistryBody(body: unknown): ApiRegistryInput | Refused {
  if (!isObject(body)) return { problem: 'value: must be a registry object' };
  const problem = body.credential === undefined ? undefined : credentialProblem(body.credential, false);
  if (problem) return { problem };
  const registry = parseRegistry(body);
  if ('problem' in registry) return registry;
  return { registry, credential: isObject(body.credential) ? parseCredential<ApiCredentialInput>(body.credential, false) : undefined };
}

/** An API registry as stored; `invalid` says why it cannot be used (it is kept, without credential, when the rest is valid). */
export type StoredApiRegistry = { registry: RegistryConfig; credential: StoredApiCredential | undefined; invalid?: undefined } | { registry: RegistryConfig | undefined; credential?: undefined; invalid: string };

/** Reads an API registry from the store (entries stored by older versions may be refused here). */
export function parseStoredApiRegistry(value: unknown): StoredApiRegistry {
  if (!isObject(value)) return { registry: undefined, invalid: 'value: not a registry object' };
  const { ca_file: caFile, ...rest } = value;
  const valid = parseRegistry(rest);
  if ('problem' in valid) return { registry: undefined, invalid: valid.problem };
  if (caFile !== undefined) return { registry: valid, invalid: 'ca_file: files on the server are not allowed through the API' };
  if (value.credential === undefined) return { registry: valid, credential: undefined };
  const problem = credentialProblem(value.credential, true);
  if (problem) return { registry: valid, invalid: problem };
  return { registry: valid, credential: parseCredential<StoredApiCredential>(value.credential as Record<string, unknown>, true) };
}

/** What is written to the store: the registry's fields and the stored credential. */
export function storedValue(registry: RegistryConfig, credential: StoredApiCredential | undefined): Record<string, unknown> {
  const { credential: _none, ...fields } = registry;
  return JSON.parse(JSON.stringify({ ...fields, ...(credential ? { credential } : {}) })) as Record<string, unknown>;
}

export function publicCredential(c: StoredApiCredential): PublicApiCredential {
  return 'type' in c ? { type: 'basic', access_key: c.access_key, has_secret: true } : { username: c.username, password: { secret: c.password.secret } };
}
