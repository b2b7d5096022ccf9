/** Errors of the backup. `code` is stable; messages are sentences without secrets. */
export type BackupErrorCode =
  | 'ERR_BACKUP_LOCKED'
  | 'ERR_BACKUP_MANIFEST'
  | 'ERR_BACKUP_UNSIGNED'
  | 'ERR_BACKUP_SIGNATURE'
  | 'ERR_BACKUP_DEVICE_KEY'
  | 'ERR_BACKUP_NOT_REGULAR'
  | 'ERR_BACKUP_NO_SNAPSHOT'
  | 'ERR_BACKUP_DAMAGED'
  | 'ERR_BACKUP_RESTORE'
  | 'ERR_BACKUP_RUNNING';

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'BackupError';
  }
}
