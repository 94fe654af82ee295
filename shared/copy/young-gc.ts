import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Keeps a streamed blob's read buffers from piling up. Each socket read is a new buffer (up to
 * 64 KiB) that is freed only when V8 collects its young generation, and V8 times that by the
 * JavaScript objects allocated, not by the bytes those buffers hold: streaming at 100+ MB/s left
 * 20-60 MiB of dead read buffers between collections, and a copy of one 64 MiB, 256 MiB or 1 GiB
 * layer peaked at 100-120 MiB of RSS where a small image needs 57. A young-generation collection
 * after every 8 MiB of blob bytes that pass through the process (a millisecond or so each, on a
 * young generation that is mostly garbage) bounds that at about 8 MiB.
 */
const EVERY_BYTES = 8 * 1024 * 1024;

type Gc = (options: { type: 'minor' | 'major' }) => void;
let gc: Gc | null | undefined;
let since = 0;

/** Counts blob bytes that passed through; collects the young generation every EVERY_BYTES. */
export function blobBytesPassed(bytes: number): void {
  since += bytes;
  if (since < EVERY_BYTES) return;
  since = 0;
  gc ??= exposedGc();
  gc?.({ type: 'minor' });
}

/**
 * V8's `gc()`, without exposing it to the process's own global scope: `--expose-gc` set now
 * applies to contexts created from now on, and a new one hands the function over. Null when the
 * runtime does not allow it (the copy then runs as it would without).
 */
function exposedGc(): Gc | null {
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    return null;
  }
}
