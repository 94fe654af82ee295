import { setTimeout as sleep } from 'node:timers/promises';
import { isAbort, ReplicatorError, SizeMismatchError, StoppedError, throwIfStopped } from '../errors.js';
import { header, type RegistryClient } from '../registry/client.js';
import { isRetryableNetworkError, RegistryError } from '../registry/errors.js';
import { closeBody } from '../registry/http.js';

/** Where a blob comes from. */
export interface BlobSource {
  client: RegistryClient;
  repository: string;
  digest: string;
  size: number;
}

/** Limits of a resuming read. */
export interface ReadOptions {
  signal?: AbortSignal | undefined;
  /** Failed reconnects in a row (no byte gained in between) before giving up. */
  maxStalledResumes?: number;
  /** Reconnects in all for one read. */
  maxResumes?: number;
  /** Delay before the first reconnect; doubles while reconnects make no progress. */
  resumeDelayMs?: number;
  onResume?: (e: { digest: string; offset: number; attempt: number; reason: string }) => void;
}

/**
 * Streams a blob's bytes from `start` to its end. When the source connection drops mid-blob,
 * it reconnects with a `Range` GET from the first byte not yet yielded, so the consumer (an
 * upload request that stays open) sees one uninterrupted stream and no byte is read twice
 * beyond what was in flight. A server that ignores `Range` (200) has the prefix skipped.
 */
export async function* readBlob(src: BlobSource, start: number, opts: ReadOptions = {}): AsyncGenerator<Buffer> {
  const maxStalled = opts.maxStalledResumes ?? 4;
  const maxResumes = opts.maxResumes ?? 50;
  let pos = start;
  let resumes = 0;
  let stalled = 0;
  while (pos < src.size) {
    throwIfStopped(opts.signal);
    const gainedFrom = pos;
    try {
      const res = await src.client.getBlob(src.repository, src.digest, pos, opts.signal);
      let skip = 0;
      if (pos > 0 && res.status === 200) {
        skip = pos; // Range ignored: the whole blob comes again.
      } else if (res.status === 206) {
        const cr = header(res.headers, 'content-range');
        const m = cr ? /^bytes (\d+)-/.exec(cr) : null;
        if (!m || Number(m[1]) !== pos) {
          closeBody(res.body);
          throw new ReplicatorError('RANGE_INVALID', `${src.digest}: asked bytes from ${pos}, got Content-Range "${cr ?? ''}"`);
        }
      }
      try {
        for await (const raw of res.body) {
          let chunk = raw as Buffer;
          if (skip > 0) {
            if (chunk.length <= skip) {
              skip -= chunk.length;
              continue;
            }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          if (pos + chunk.length > src.size) {
            throw new SizeMismatchError(src.size, pos + chunk.length, `blob ${src.digest}`);
          }
          pos += chunk.length;
          yield chunk;
        }
      } finally {
        closeBody(res.body);
      }
      if (pos < src.size) {
        // The server ended a "complete" response early: treat it as a dropped connection.
        throw new RegistryError({ method: 'GET', url: res.url, retryable: true, message: `body ended at byte ${pos} of ${src.size}` });
      }
    } catch (err) {
      if (isAbort(err) || opts.signal?.aborted) throw new StoppedError('stopped', { cause: err });
      if (!isRetryableNetworkError(err)) throw err;
      stalled = pos > gainedFrom ? 0 : stalled + 1;
      resumes += 1;
      if (stalled > maxStalled || resumes > maxResumes) throw err;
      opts.onResume?.({ digest: src.digest, offset: pos, attempt: resumes, reason: (err as Error).message });
      const delay = (opts.resumeDelayMs ?? 100) * 2 ** Math.max(0, stalled - 1);
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined).catch((e: unknown) => {
        throw new StoppedError('stopped', { cause: e });
      });
    }
  }
}

/**
 * Hands out exact byte counts from a stream of chunks (splitting chunks at boundaries and
 * keeping the remainder), so each PATCH of a chunked upload streams exactly its range.
 */
export class ByteTaker {
  private leftover: Buffer | undefined;
  private readonly it: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Yields exactly `n` bytes; throws when the source ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      let chunk = this.leftover;
      this.leftover = undefined;
      if (!chunk) {
        const next = await this.it.next();
        if (next.done) throw new ReplicatorError('SHORT_READ', `source ended ${left} bytes early`);
        chunk = next.value;
      }
      if (chunk.length > left) {
        this.leftover = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      yield chunk;
    }
  }

  /** Stops the underlying source (closes its connection). */
  async close(): Promise<void> {
    this.leftover = undefined;
    await this.it.return?.(undefined);
  }
}
