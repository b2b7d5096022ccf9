/** Errors of the directories. `code` is stable. */
export class DirectoryError extends Error {
  constructor(
    readonly code: 'ERR_USER_EXISTS' | 'ERR_USER_NAME' | 'ERR_PASSWORD_POLICY' | 'ERR_DIRECTORY_FILE',
    message: string,
  ) {
    super(message);
    this.name = 'DirectoryError';
  }
}
