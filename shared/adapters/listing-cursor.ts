import { ReplicatorError } from '../errors.js';

/**
 * Listing cursors are opaque to callers (the API hands them out as `next_cursor`): base64url of a
 * JSON value only the store that made it reads. A cursor the store did not give out for that
 * listing is the caller's mistake, not a failure: `INVALID_CURSOR`, which the HTTP layer answers
 * with 400. Shared by every backend, and free of any backend's SDK.
 */

/** A listing cursor this store did not give out for that listing (the API answers 400). */
export class InvalidCursorError extends ReplicatorError {
  override name = 'InvalidCursorError';
  constructor() {
    super('INVALID_CURSOR', 'cursor: not a cursor of this listing (pass next_cursor from the previous page as is)');
  }
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The JSON value in a cursor; InvalidCursorError when it is not one. */
export function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
}
