/** How one blob reached the destination. */
export type BlobOutcome = 'copied' | 'skipped' | 'mounted';

/**
 * Typed progress of one image copy. Listeners are called synchronously and must be cheap: the
 * CLI renders at its own pace, Lambdas keep counters; a listener never stalls a copy.
 */
export type CopyEvent =
  /** The source is resolved to a digest, and the destination says what its tag (or digest) is at (undefined: nothing). */
  | { kind: 'resolved'; source: string; digest: string; mediaType: string; destination: string; destinationDigest: string | undefined }
  /** The manifest tree is resolved: what will be transferred at most. */
  | { kind: 'plan'; digest: string; mediaType: string; manifests: number; blobs: number; bytes: number }
  | { kind: 'blob-start'; digest: string; size: number; /** Continuing an upload an earlier run handed over. */ resumedAt?: number }
  /** Bytes of a blob accepted into the destination upload so far (may go back after a resume). */
  | { kind: 'blob-progress'; digest: string; size: number; done: number; delta: number }
  | { kind: 'blob-done'; digest: string; size: number; outcome: BlobOutcome }
  | { kind: 'manifest-pushed'; reference: string; digest: string; mediaType: string }
  /** A request or a stream is tried again. */
  | { kind: 'retry'; what: string; attempt: number; delayMs: number; reason: string; /** The HTTP status that caused it, if any. */ status?: number | undefined };

/** A progress listener. */
export type CopyListener = (event: CopyEvent) => void;

/** Calls the listener, and keeps a throwing listener from breaking the copy. */
export function emitter(listener: CopyListener | undefined): CopyListener {
  if (!listener) return () => {};
  return (event) => {
    try {
      listener(event);
    } catch {
      // A broken progress display must not fail a copy.
    }
  };
}
