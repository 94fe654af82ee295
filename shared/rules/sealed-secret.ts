import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { ReplicatorError } from '../errors.js';

/**
 * A secret encrypted at rest with AES-256-GCM (node:crypto): a fresh 96-bit IV per value, the
 * 128-bit tag, and associated data binding it to where it belongs (a blob copied into another
 * entry does not open there). Base64 fields, so it stores as JSON.
 */
export const sealedSecretSchema = z.strictObject({
  alg: z.literal('A256GCM'),
  iv: z.string().check(z.regex(/^[A-Za-z0-9+/]{16}$/)),
  tag: z.string().check(z.regex(/^[A-Za-z0-9+/]{22}==$/)),
  data: z.string().check(z.regex(/^[A-Za-z0-9+/]*={0,2}$/)),
});
export type SealedSecret = z.infer<typeof sealedSecretSchema>;

/** The key's length: AES-256. */
export const KEY_BYTES = 32;

/** Reads `api.encryption_key`'s value: 32 bytes in base64. The error never shows the value. */
export function parseEncryptionKey(text: string, path = 'api.encryption_key'): Buffer {
  const t = text.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(t) ? Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64') : undefined;
  if (!key || key.length !== KEY_BYTES) {
    throw new ReplicatorError('CONFIG_INVALID', `${path}: must be ${KEY_BYTES} random bytes in base64 (e.g. the output of \`openssl rand -base64 32\`)`);
  }
  return key;
}

export function seal(key: Buffer, value: string, context: string): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return { alg: 'A256GCM', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Decrypts; a wrong key, another context or altered bytes fail with SECRET_UNREADABLE. */
export function unseal(key: Buffer, sealed: SealedSecret, context: string): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new ReplicatorError('SECRET_UNREADABLE', `${context}: the stored secret does not decrypt with api.encryption_key (another key, or altered)`, { cause: err });
  }
}
