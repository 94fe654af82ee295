import { isAbort, ReplicatorError, SizeMismatchError, StoppedError, throwIfStopped } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { header } from '../registry/http.js';
import { isTransient, RegistryError } from '../registry/errors.js';
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
  /** Failed reconnects in a row (no byte gained in between) before giving up (default: the source's retries). */
  maxStalledResumes?: number;
  /** Reconnects in all for one read. */
  maxResumes?: number;
  /** Before a reconnect: why, and the source's HTTP status and Retry-After when it answered one (the host's backoff waits it out). */
  onResume?: ((e: { digest: string; offset: number; attempt: number; reason: string; status?: number | undefined; retryAfterMs?: number | undefined }) => void) | undefined;
}

/**
 * Streams the bytes `[start, end)` of a blob. When the source GET fails or its connection drops
 * mid-blob (a transient failure), it reconnects with a `Range` GET from the first byte not yet
 * yielded, so the consumer (an upload request that stays open) sees one uninterrupted stream and
 * no byte is read twice beyond what was in flight. A server that ignores `Range` (200) has the
 * prefix skipped. This is the only retry layer of a blob GET (the request is sent once), and it
 * waits the registry's per-host backoff between tries: at most the retry policy's attempts
 * without progress, 50 reconnects in all.
 */
export async function* readBlob(src: BlobSource, start: number, end = src.size, opts: ReadOptions = {}): AsyncGenerator<Buffer> {
  const maxStalled = opts.maxStalledResumes ?? src.client.retryPolicy.maxAttempts - 1; // attempts without progress, the first included
  const maxResumes = opts.maxResumes ?? 50;
  let pos = start;
  let resumes = 0;
  let stalled = 0;
  while (pos < end) {
    throwIfStopped(opts.signal);
    const gainedFrom = pos;
    let answered = false;
    try {
      const res = await src.client.getBlob(src.repository, src.digest, { start: pos, end: end < src.size ? end : undefined }, opts.signal);
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
      answered = true;
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
          if (pos + chunk.length > end) {
            if (end === src.size) throw new SizeMismatchError(src.size, pos + chunk.length, `blob ${src.digest}`);
            chunk = chunk.subarray(0, end - pos); // a server that sent more than the range asked
          }
          pos += chunk.length;
          yield chunk;
          if (pos >= end) break;
        }
      } finally {
        closeBody(res.body);
      }
      if (pos < end) {
        // The server ended a "complete" response early: treat it as a dropped connection.
        throw new RegistryError({ method: 'GET', url: res.url, retryable: true, message: `body ended at byte ${pos} of ${src.size}` });
      }
    } catch (err) {
      if (isAbort(err) || opts.signal?.aborted) throw new StoppedError('stopped', { cause: err });
      if (!isTransient(err)) throw err;
      stalled = pos > gainedFrom ? 0 : stalled + 1;
      resumes += 1;
      if (stalled > maxStalled || resumes > maxResumes) throw err;
      const answer = err instanceof RegistryError ? { status: err.status, retryAfterMs: err.retryAfterMs } : {};
      opts.onResume?.({ digest: src.digest, offset: pos, attempt: resumes, reason: (err as Error).message, ...answer });
      // A failed request has moved the host's backoff already; a body cut mid-stream has not.
      if (answered) await src.client.backOff(opts.signal);
    }
  }
}

/**
 * A blob's bytes as a cursor that upload attempts take exact counts from. The source stream is
 * opened once and kept across upload attempts: when the destination acknowledged less than was
 * sent (a failed PATCH or PUT), `seek` back re-reads only the missing range with its own `Range`
 * GET and then continues the original stream, so a blob costs at most its size plus what one
 * failed request carried.
 */
export class BlobStream {
  /** Sources in order: re-read ranges first, the main stream last. */
  private readonly sources: Array<AsyncIterator<Buffer>> = [];
  private leftover: Buffer | undefined;
  private pos: number;

  constructor(
    private readonly src: BlobSource,
    private readonly opts: ReadOptions,
    start = 0,
  ) {
    this.pos = start;
    this.sources.push(readBlob(src, start, src.size, opts));
  }

  /** Offset of the next byte `take` yields. */
  get position(): number {
    return this.pos;
  }

  /** Moves to `offset`: backwards re-reads a range; forwards (rare) reopens the source there. */
  async seek(offset: number): Promise<void> {
    if (offset === this.pos) return;
    if (offset < this.pos) {
      if (this.leftover) {
        // Keep the unread remainder in front of the main stream.
        const rest = this.leftover;
        this.sources.unshift((async function* () { yield rest; })());
        this.leftover = undefined;
      }
      this.sources.unshift(readBlob(this.src, offset, this.pos, this.opts));
    } else {
      await this.close();
      this.sources.push(readBlob(this.src, offset, this.src.size, this.opts));
    }
    this.pos = offset;
  }

  /** Yields exactly `n` bytes from the current position; throws when the source ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      let chunk = this.leftover;
      this.leftover = undefined;
      if (!chunk) {
        const source = this.sources[0];
        if (!source) throw new ReplicatorError('SHORT_READ', `${this.src.digest}: source ended ${left} bytes early`);
        const next = await source.next();
        if (next.done) {
          this.sources.shift();
          continue;
        }
        chunk = next.value;
      }
      if (chunk.length > left) {
        this.leftover = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      this.pos += chunk.length;
      yield chunk;
    }
  }

  /** Closes every open source connection. */
  async close(): Promise<void> {
    this.leftover = undefined;
    const open = this.sources.splice(0);
    await Promise.all(open.map((s) => s.return?.(undefined)));
  }
}
