/**
 * Errors of the console's recovery view and their statuses, with those of
 * what it drives (the backup reader, the target, the recovery slot), so
 * that each is a readable page with its sentence, never a bare 500.
 * Messages never carry key material.
 */
import type { StatusTable } from '../../http/error-status.js';

export type RecoveryErrorCode =
  /** The console has no `recovery.target`: no recovery view. */
  | 'ERR_RECOVERY_OFF'
  /** The PC is online: its data is browsed through the link, not from its backup. */
  | 'ERR_RECOVERY_ONLINE'
  /** The PC was never enrolled: the console pinned no device key to trust its manifests with. */
  | 'ERR_RECOVERY_NOT_ENROLLED'
  /** What was pasted is not a PEM P-256 private key. */
  | 'ERR_RECOVERY_KEY';

export class RecoveryError extends Error {
  constructor(
    readonly code: RecoveryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RecoveryError';
  }
}

export const RECOVERY_STATUS: StatusTable = {
  ERR_RECOVERY_OFF: 404,
  ERR_RECOVERY_ONLINE: 409,
  ERR_RECOVERY_NOT_ENROLLED: 409,
  ERR_RECOVERY_KEY: 400,
  // The key does not open the snapshot's recovery slots.
  ERR_SLOT_OPEN: 403,
  ERR_BACKUP_NO_SNAPSHOT: 404,
  // The NAS holds something the pinned device key did not sign, or damaged files.
  ERR_BACKUP_DEVICE_KEY: 502,
  ERR_BACKUP_SIGNATURE: 502,
  ERR_BACKUP_UNSIGNED: 502,
  ERR_BACKUP_MANIFEST: 502,
  ERR_BACKUP_DAMAGED: 502,
  ERR_BACKUP_NOT_REGULAR: 502,
  ERR_OBJECT_AUTH: 502,
  ERR_OBJECT_FORMAT: 502,
  ERR_KEYRING: 502,
  ERR_INDEX_KEY: 502,
  ERR_INDEX_VERSION: 502,
  ERR_TARGET_NOT_FOUND: 503,
  ERR_TARGET_UNREACHABLE: 503,
  ERR_TARGET_NO_SHARE: 503,
  ERR_TARGET_AUTH: 503,
  ERR_TARGET_IO: 503,
};
