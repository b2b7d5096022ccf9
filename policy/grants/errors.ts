/**
 * Errors of the console's grants and share rules as the agent checks them.
 * `code` is stable: the audit log records it and the agent's status table
 * maps it (nothing here knows HTTP). Messages never hold the token.
 */
export type GrantErrorCode =
  /** No grant, not a JWT, wrong `typ`, missing or ill-typed claims. */
  | 'ERR_GRANT_MALFORMED'
  /** Not signed by the console key this PC pinned at enrolment (another key, algorithm or kid). */
  | 'ERR_GRANT_SIGNATURE'
  | 'ERR_GRANT_EXPIRED'
  /** `aud` is another PC. */
  | 'ERR_GRANT_OTHER_PC'
  /** The request names another user than the grant. */
  | 'ERR_GRANT_OTHER_USER'
  /** The request's path is outside the grant's prefix, or its method is not the grant's. */
  | 'ERR_GRANT_SCOPE'
  /** The grant's request id was used before. */
  | 'ERR_GRANT_REPLAYED'
  /** The grant allows less than the request needs (contents with a list-only grant, a write with a read grant). */
  | 'ERR_GRANT_ACCESS'
  /** A share grant names no valid rule (unknown, expired, revoked, another grantee or folder). */
  | 'ERR_GRANT_NO_RULE'
  /** This PC has pinned no console key (enrolled before grants, and not welcomed since). */
  | 'ERR_GRANT_NO_CONSOLE_KEY';

export class GrantError extends Error {
  constructor(
    readonly code: GrantErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GrantError';
  }
}
