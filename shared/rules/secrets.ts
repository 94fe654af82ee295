import { readFile } from 'node:fs/promises';
import { ReplicatorError } from '../errors.js';
import type { SecretStore } from './ports.js';
import type { SecretRef } from './config-schema.js';

/** Where secret references are resolved from. */
export interface SecretSources {
  env?: NodeJS.ProcessEnv;
  /** AWS Secrets Manager (or another store); without one, `{secret: ...}` references fail. */
  store?: SecretStore | undefined;
}

/**
 * Resolves a secret reference to its value. Errors name the config path and the reference
 * (`{env: HQ_PASSWORD}`), never a value.
 */
export async function resolveSecret(ref: SecretRef, path: string, sources: SecretSources = {}): Promise<string> {
  if ('env' in ref) {
    const value = (sources.env ?? process.env)[ref.env];
    if (value === undefined || value === '') {
      throw new ReplicatorError('SECRET_MISSING', `${path}: environment variable ${ref.env} is not set`);
    }
    return value;
  }
  if ('file' in ref) {
    try {
      return (await readFile(ref.file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new ReplicatorError('SECRET_MISSING', `${path}: cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!sources.store) {
    throw new ReplicatorError(
      'SECRET_UNAVAILABLE',
      `${path}: {secret: ${ref.secret}} needs AWS Secrets Manager, which this command does not use; use {env: NAME} or {file: PATH} locally`,
    );
  }
  try {
    return await sources.store.get(ref.secret);
  } catch (err) {
    throw new ReplicatorError('SECRET_MISSING', `${path}: cannot read secret ${ref.secret}: ${(err as Error).message}`, { cause: err });
  }
}
