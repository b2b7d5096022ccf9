/**
 * Errors of the console's take-out decisions (ConsoleTakeout). `code` is
 * stable; the console's status table (../error-status.ts) maps it to a status.
 * Messages never hold a token or key material.
 */

export type ConsoleTakeoutErrorCode =
  /** No take-out request (or approved key) with this id. */
  | 'ERR_CTAKEOUT_NO_REQUEST'
  /** The request was decided already (approved, denied, expired or revoked), or the key is not approved. */
  | 'ERR_CTAKEOUT_DECIDED'
  /** days is not an integer from 1 to the PC's takeout.maxDays. */
  | 'ERR_CTAKEOUT_DAYS'
  /** A denial's note is empty or too long. */
  | 'ERR_CTAKEOUT_NOTE'
  /** The PC is removed or not enrolled: no pinned device key to encrypt K_to to. */
  | 'ERR_CTAKEOUT_PC'
  /** The request cannot be signed with this console's issuer key (the PC does not trust it, or K_to does not open). */
  | 'ERR_CTAKEOUT_SIGN'
  /** The PC's link is down: an approval needs the PC to install the key at once. */
  | 'ERR_CTAKEOUT_PC_OFFLINE'
  /** The PC did not confirm in time (the key sent is revoked). */
  | 'ERR_CTAKEOUT_PC_TIMEOUT'
  /** The PC may have installed the key but its answer was lost (the link broke, a garbled answer) or the store could not record it: the key sent is revoked. */
  | 'ERR_CTAKEOUT_UNCONFIRMED'
  /** The PC refused the key (its message and code are in the message). */
  | 'ERR_CTAKEOUT_AGENT'
  /** The request is no longer pending on the PC (the user asked again): it expired. */
  | 'ERR_CTAKEOUT_GONE';

export class ConsoleTakeoutError extends Error {
  constructor(
    readonly code: ConsoleTakeoutErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleTakeoutError';
  }
}
