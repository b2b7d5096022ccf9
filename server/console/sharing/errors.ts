/**
 * Errors of sharing (share-rules.ts). `code` is stable; the console's
 * status table (../error-status.ts, SHARING_STATUS) maps it to a status.
 * Messages name administrators, PCs, users and groups; a folder name only
 * goes back to the administrator who typed it.
 */
export type ShareErrorCode =
  /** A folder, grantee, access or expiry that is missing or out of range. */
  | 'ERR_SHARE_INPUT'
  /** The administrator lacks the `sharing` role. */
  | 'ERR_SHARE_ROLE'
  /** The PC is not registered, or has never reported such a user. */
  | 'ERR_SHARE_UNKNOWN'
  /** No share rule with this id. */
  | 'ERR_SHARE_NO_RULE'
  /** The rule was revoked already. */
  | 'ERR_SHARE_REVOKED';

export class ShareError extends Error {
  constructor(
    readonly code: ShareErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ShareError';
  }
}
