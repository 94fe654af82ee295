import { isAbort, StoppedError, throwIfStopped } from '../errors.js';
import type { RegistryClient, UploadSession } from '../registry/client.js';
import { isTransient } from '../registry/errors.js';
import { BlobStream, type BlobSource } from './blob-reader.js';
import { BlobVerifier } from './blob-verifier.js';
import { HandedOverError, type Handover } from './handover.js';
import type { BlobOutcome, CopyListener } from './progress.js';
import type { Throttle } from './throttle.js';
import { blobBytesPassed } from './young-gc.js';

/** Where a blob goes. */
export interface BlobTarget {
  client: RegistryClient;
  repository: string;
}

/** How to move one blob. */
export interface BlobCopyOptions {
  /** Chunk size of a chunked upload (POST, PATCH..., PUT); undefined = one streamed PUT. */
  chunkSize?: number | undefined;
  /** Repositories of the destination registry that may already hold the blob (mount sources). */
  mountFrom?: readonly string[];
  throttle?: Throttle | undefined;
  signal?: AbortSignal | undefined;
  emit: CopyListener;
  /** Destination failures in a row without progress before the blob fails (default: the destination's retry attempts). */
  maxStalledAttempts?: number;
  /** Hand over before a deadline: chunked uploads stop after a PATCH and are continued by a later run. */
  handover?: Handover | undefined;
}

const MAX_UPLOAD_ATTEMPTS = 50;

/** A blob ready to stream: its destination upload session is open. */
export interface PreparedUpload {
  session: UploadSession;
}

/**
 * The cheap first half of a blob copy: HEAD at the destination (present: skipped), then a
 * cross-repo mount when a repository of the same registry may hold it (201: mounted), else an
 * upload session (the mount's 202, or a POST). Done ahead of the transfer slots, so a blob
 * starts streaming the moment a slot frees instead of paying these round trips then.
 */
export async function prepareBlob(
  src: BlobSource,
  dst: BlobTarget,
  opts: Pick<BlobCopyOptions, 'mountFrom' | 'signal' | 'handover'>,
): Promise<Exclude<BlobOutcome, 'copied'> | PreparedUpload> {
  throwIfStopped(opts.signal);
  opts.handover?.throwIfRequested();
  if ((await dst.client.headBlob(dst.repository, src.digest, opts.signal)) !== undefined) return 'skipped';
  const resumed = await resumeUpload(src, dst, opts);
  if (resumed) return resumed;
  // Requests that open a session are not aborted midway: a session we never hear of could
  // not be cancelled. A stop is checked right after instead.
  let session: UploadSession | undefined;
  const from = opts.mountFrom?.find((r) => r !== dst.repository);
  if (from !== undefined) {
    const mount = await dst.client.mountBlob(dst.repository, src.digest, from);
    if (mount.mounted) return 'mounted';
    session = mount.session;
  }
  session ??= await dst.client.startUpload(dst.repository);
  if (opts.signal?.aborted) {
    await dst.client.cancelUpload(dst.repository, session);
    throwIfStopped(opts.signal);
  }
  return { session };
}

/**
 * Continues the upload an earlier run handed over, from the offset the registry reports now
 * (its upload status), not the one recorded: the registry is the truth. Undefined when there is
 * none, or when the registry no longer has it (expired, or cancelled by a cut-off PATCH).
 */
async function resumeUpload(src: BlobSource, dst: BlobTarget, opts: Pick<BlobCopyOptions, 'signal' | 'handover'>): Promise<PreparedUpload | undefined> {
  const cp = opts.handover?.take(dst.repository, src.digest);
  if (!cp) return undefined;
  const recorded: UploadSession = { location: new URL(cp.location), offset: cp.offset, minChunk: undefined };
  const session = await dst.client.uploadStatus(dst.repository, recorded, opts.signal).catch(() => undefined);
  if (!session || session.offset > src.size) return undefined;
  return { session };
}

/**
 * The second half: streams the source GET into the prepared upload, hashed as bytes pass and
 * checked before the last byte is sent. Source drops are resumed inside the read (`Range` GET,
 * the upload stays open); destination drops resume after the last acknowledged chunk, or in a
 * new session when the registry cancelled the old one. A failure cancels the session.
 */
export async function transferBlob(src: BlobSource, dst: BlobTarget, prepared: PreparedUpload, opts: BlobCopyOptions): Promise<void> {
  const stream = new BlobStream(src, {
    signal: opts.signal,
    onResume: (e) => opts.emit({ kind: 'retry', what: `read ${e.digest} from byte ${e.offset}`, attempt: e.attempt, delayMs: 0, reason: e.reason }),
  });
  try {
    if (opts.handover?.requested) {
      // Waited for a transfer slot past the handover: keep the open session for the next run.
      if (opts.chunkSize) opts.handover.save(checkpointOf(dst, src.digest, prepared.session));
      else await dst.client.cancelUpload(dst.repository, prepared.session);
      opts.handover.throwIfRequested();
    }
    opts.emit({ kind: 'blob-start', digest: src.digest, size: src.size, ...(prepared.session.offset > 0 ? { resumedAt: prepared.session.offset } : {}) });
    await new BlobUpload(src, dst, opts, prepared.session, stream).run();
  } finally {
    await stream.close();
  }
}

/** The state of one blob upload across its attempts. */
class BlobUpload {
  private readonly verifier: BlobVerifier;
  /** Set when the failure came from our side of the body (source gone for good, bad digest, stop). */
  private bodyFailure: unknown;

  constructor(
    private readonly src: BlobSource,
    private readonly dst: BlobTarget,
    private readonly opts: BlobCopyOptions,
    private session: UploadSession,
    /** The source, opened once; attempts seek in it. */
    private readonly stream: BlobStream,
  ) {
    this.verifier = new BlobVerifier(src.digest, src.size);
  }

  async run(): Promise<void> {
    const maxStalled = this.opts.maxStalledAttempts ?? this.dst.client.retryPolicy.maxAttempts;
    let stalled = 0;
    for (let attempt = 1; ; attempt++) {
      const before = this.session.offset;
      this.bodyFailure = undefined;
      try {
        if (this.opts.chunkSize) await this.uploadChunked(this.opts.chunkSize);
        else await this.uploadWhole();
        return;
      } catch (err) {
        if (err instanceof HandedOverError) throw err; // the session stays open for the next run
        const cause = this.bodyFailure ?? err;
        if (this.bodyFailure !== undefined || !isTransient(err) || this.opts.signal?.aborted) {
          await this.dst.client.cancelUpload(this.dst.repository, this.session);
          if (isAbort(cause) || this.opts.signal?.aborted) throw new StoppedError('stopped', { cause });
          throw cause;
        }
        if (await this.recover()) return;
        stalled = this.session.offset > before ? 0 : stalled + 1;
        if (stalled >= maxStalled || attempt >= MAX_UPLOAD_ATTEMPTS) {
          await this.dst.client.cancelUpload(this.dst.repository, this.session);
          throw err;
        }
        this.opts.emit({
          kind: 'retry',
          what: `upload ${this.src.digest} from byte ${this.session.offset}`,
          attempt,
          delayMs: 0,
          reason: (err as Error).message,
        });
      }
    }
  }

  /**
   * After a destination failure: find out what the registry kept. True when the blob turned
   * out to be complete already. Otherwise `session` is where to continue (possibly a new one).
   */
  private async recover(): Promise<boolean> {
    const { client, repository } = this.dst;
    if (this.opts.chunkSize) {
      const status = await client.uploadStatus(repository, this.session, this.opts.signal).catch(() => undefined);
      if (status) {
        this.session = status;
        return false;
      }
    } else if ((await client.headBlob(repository, this.src.digest, this.opts.signal).catch(() => undefined)) !== undefined) {
      return true; // the registry committed it before the connection dropped
    }
    // docker-registry cancels a session whose PATCH/PUT body was cut off: start a new one.
    await client.cancelUpload(repository, this.session);
    this.session = await client.startUpload(repository, this.opts.signal);
    return false;
  }

  /** One streamed `PUT ?digest=` with the whole blob (after the POST that opened the session). */
  private async uploadWhole(): Promise<void> {
    const start = this.session.offset;
    await this.stream.seek(start);
    const length = this.src.size - start;
    const body = this.body(this.stream.take(length), start);
    await this.dst.client.completeUpload(this.dst.repository, this.session, this.src.digest, { stream: body, length }, this.opts.signal);
  }

  /** PATCH chunk after chunk (`Content-Range`), then `PUT ?digest=` with no body. */
  private async uploadChunked(chunkSize: number): Promise<void> {
    const size = Math.max(chunkSize, this.session.minChunk ?? 0);
    while (this.session.offset < this.src.size) {
      const start = this.session.offset;
      await this.stream.seek(start);
      const length = Math.min(size, this.src.size - start);
      const body = this.body(this.stream.take(length), start);
      this.session = await this.dst.client.uploadChunk(this.dst.repository, this.session, body, length, this.opts.signal);
      const handover = this.opts.handover;
      if (handover?.requested && this.session.offset < this.src.size) {
        handover.save(checkpointOf(this.dst, this.src.digest, this.session));
        handover.throwIfRequested();
      }
    }
    if (this.src.size === 0) this.verifier.verify();
    await this.dst.client.completeUpload(this.dst.repository, this.session, this.src.digest, undefined, this.opts.signal);
  }

  /**
   * The request body: bytes from the source at `from`, hashed on the way; the digest is checked
   * before the last piece is handed over, so a wrong blob never completes at the destination.
   */
  private async *body(pieces: AsyncIterable<Buffer>, from: number): AsyncGenerator<Buffer> {
    const { src, opts, verifier } = this;
    let offset = from;
    try {
      if (src.size === 0) verifier.verify();
      for await (const piece of pieces) {
        throwIfStopped(opts.signal);
        verifier.update(offset, piece);
        offset += piece.length;
        if (offset === src.size) verifier.verify();
        await opts.throttle?.consume(piece.length, opts.signal);
        opts.emit({ kind: 'blob-progress', digest: src.digest, size: src.size, done: offset, delta: piece.length });
        yield piece;
        blobBytesPassed(piece.length);
      }
    } catch (err) {
      this.bodyFailure = err;
      throw err;
    }
  }
}

function checkpointOf(dst: BlobTarget, digest: string, session: UploadSession) {
  return { repository: dst.repository, digest, location: session.location.href, offset: session.offset };
}


