/**
 * Base class of every error the engine throws on purpose. Callers match on the class or on
 * `code` (stable, upper snake case), never on the message text.
 */
export class ReplicatorError extends Error {
  override name = 'ReplicatorError';
  /** Stable machine-readable code, e.g. `DIGEST_MISMATCH` or a registry's `MANIFEST_UNKNOWN`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Bad input from a user: a reference, a flag, a size. Exit code 2 in the CLI. */
export class UsageError extends ReplicatorError {
  override name = 'UsageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}

/** Content that does not match its descriptor: wrong digest or wrong size. Never retried. */
export class DigestMismatchError extends ReplicatorError {
  override name = 'DigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
    what: string,
  ) {
    super('DIGEST_MISMATCH', `${what}: content digest ${actual} does not match expected ${expected}`);
  }
}

/** A blob whose byte count differs from its descriptor's size. Never retried. */
export class SizeMismatchError extends ReplicatorError {
  override name = 'SizeMismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
    what: string,
  ) {
    super('SIZE_MISMATCH', `${what}: ${actual} bytes where the descriptor says ${expected}`);
  }
}

/** The copy was stopped through its AbortSignal. */
export class StoppedError extends ReplicatorError {
  override name = 'StoppedError';
  constructor(message = 'stopped', options?: { cause?: unknown }) {
    super('STOPPED', message, options);
  }
}

/** True when `err` came from an aborted signal (ours or a platform AbortError). */
export function isAbort(err: unknown): boolean {
  if (err instanceof StoppedError) return true;
  const e = err as { name?: string; code?: string } | null;
  return e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED' || e?.code === 'ABORT_ERR';
}

/** Throws a StoppedError when the signal is aborted; called between chunks and steps. */
export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StoppedError('stopped', { cause: signal.reason });
}

/** `CODE: message` of an error of ours, the message of any other: how a failure is recorded and logged. */
export function describeError(err: unknown): string {
  if (err instanceof ReplicatorError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
