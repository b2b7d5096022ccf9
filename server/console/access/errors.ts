/**
 * Errors of the two-person rule (access-requests.ts). `code` is stable; the
 * console's status table (../error-status.ts, ACCESS_STATUS) maps it to a
 * status. Messages name administrators, PCs and users, never file paths.
 */
export type AccessErrorCode =
  /** A reason, hours or user that is missing or out of range. */
  | 'ERR_ACCESS_INPUT'
  /** The administrator lacks the role this needs (`data` to ask, `approver` to decide). */
  | 'ERR_ACCESS_ROLE'
  /** An approver tried to approve their own request: a different administrator must. */
  | 'ERR_ACCESS_OWN_REQUEST'
  /** No access request with this id. */
  | 'ERR_ACCESS_NO_REQUEST'
  /** The request was approved or denied already. */
  | 'ERR_ACCESS_DECIDED'
  /** The PC is not registered, or has never reported such a user. */
  | 'ERR_ACCESS_UNKNOWN'
  /** access.approvals is 0: contents need no approval, so there is nothing to ask. */
  | 'ERR_ACCESS_OFF';

export class AccessError extends Error {
  constructor(
    readonly code: AccessErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AccessError';
  }
}
