import type { ReplicatorError } from '../../shared/errors.js';

/** Where the embedded state lives unless --data-dir says otherwise. */
export const DEFAULT_DATA_DIR = '.harbor-replicator';

/** The data dir cannot be used (another process owns it, it is not a usable directory, or of an old format): exit 2, as bad usage. */
export function isDataDirProblem(err: ReplicatorError): boolean {
  return err.code === 'DATA_DIR_IN_USE' || err.code === 'DATA_DIR_INVALID' || err.code === 'DATA_DIR_LOCK' || err.code === 'DATA_DIR_OLD_FORMAT';
}
