import { createHash, type Hash } from 'node:crypto';
import { DigestMismatchError, ReplicatorError, SizeMismatchError } from '../errors.js';

/**
 * Hashes a blob's bytes as they pass, by offset, so a resumed range that repeats bytes already
 * hashed is not hashed twice. A resume that starts past the hashed prefix (a new process
 * continuing an upload) leaves the check to the registry's own digest verification at the
 * final `PUT ?digest=`.
 */
export class BlobVerifier {
  private readonly hash: Hash;
  private hashed = 0;
  private gap = false;

  constructor(
    readonly digest: string,
    readonly size: number,
  ) {
    const alg = digest.split(':', 1)[0];
    if (alg !== 'sha256' && alg !== 'sha512') {
      throw new ReplicatorError('DIGEST_UNSUPPORTED', `cannot verify ${digest}: unsupported algorithm`);
    }
    this.hash = createHash(alg);
  }

  /** Feeds `chunk`, which starts at byte `offset` of the blob. */
  update(offset: number, chunk: Buffer): void {
    const end = offset + chunk.length;
    if (end > this.size) throw new SizeMismatchError(this.size, end, `blob ${this.digest}`);
    if (this.gap || end <= this.hashed) return;
    if (offset > this.hashed) {
      this.gap = true;
      return;
    }
    this.hash.update(offset === this.hashed ? chunk : chunk.subarray(this.hashed - offset));
    this.hashed = end;
  }

  /** Throws when every byte was seen and the digest differs. */
  verify(): void {
    if (this.gap) return;
    if (this.hashed !== this.size) throw new SizeMismatchError(this.size, this.hashed, `blob ${this.digest}`);
    const actual = `${this.digest.split(':', 1)[0]}:${this.hash.copy().digest('hex')}`;
    if (actual !== this.digest) throw new DigestMismatchError(this.digest, actual, `blob ${this.digest}`);
  }
}
