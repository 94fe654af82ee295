import { ReplicatorError } from '../errors.js';

/**
 * A chunked upload left open at the destination for a later run to continue: where the next
 * PATCH goes and how many bytes the registry acknowledged (after the last completed PATCH).
 */
export interface UploadCheckpoint {
  repository: string;
  digest: string;
  location: string;
  offset: number;
}

/** The copy stopped to hand its work over (a Lambda near its deadline); not a failure. */
export class HandedOverError extends ReplicatorError {
  override name = 'HandedOverError';
  constructor(readonly checkpoints: readonly UploadCheckpoint[]) {
    super('HANDED_OVER', `handed over with ${checkpoints.length} upload(s) open`);
  }
}

/**
 * How a copy hands over before a deadline and how the next run picks up. When `signal` aborts,
 * chunked uploads stop after the PATCH in flight and record where they are; blobs not started
 * yet are left for the next run. The next run continues each recorded upload from its offset
 * (asking the registry first) with a `Range` GET at the source; the registry's digest check at
 * the final `PUT ?digest=` guards the whole blob, since a hash's state cannot be carried over.
 */
export class Handover {
  private readonly previous = new Map<string, UploadCheckpoint>();
  private readonly saved = new Map<string, UploadCheckpoint>();

  constructor(
    /** Aborted when the copy must hand over. */
    readonly signal: AbortSignal,
    previous: readonly UploadCheckpoint[] = [],
  ) {
    for (const cp of previous) this.previous.set(key(cp.repository, cp.digest), cp);
  }

  get requested(): boolean {
    return this.signal.aborted;
  }

  /** The upload an earlier run left open for this blob (taken once). */
  take(repository: string, digest: string): UploadCheckpoint | undefined {
    const k = key(repository, digest);
    const cp = this.previous.get(k);
    this.previous.delete(k);
    return cp;
  }

  /** Records an upload to continue later. */
  save(cp: UploadCheckpoint): void {
    this.saved.set(key(cp.repository, cp.digest), cp);
  }

  /** Everything to carry over: uploads saved now, and earlier ones this run never reached. */
  checkpoints(): UploadCheckpoint[] {
    return [...this.saved.values(), ...[...this.previous.values()].filter((cp) => !this.saved.has(key(cp.repository, cp.digest)))];
  }

  /** Throws `HandedOverError` when a handover was asked for. */
  throwIfRequested(): void {
    if (this.signal.aborted) throw new HandedOverError(this.checkpoints());
  }
}

const key = (repository: string, digest: string) => `${repository}@${digest}`;
