/**
 * The user's notices of every access to their data by someone else (an
 * administrator through the console, or a share's grantee): kept in the
 * user's own vault index (encrypted with it), listed newest first on the
 * user's page and in the read-only file NOTICES_FILE_NAME at the root of
 * their drive. They cannot be turned off.
 */

export const NOTICES_FILE_NAME = 'Access notices.txt';

export interface AccessNotice {
  /** Epoch ms. */
  time: number;
  /** The administrator or grantee (never the user). */
  actor: string;
  kind: 'admin' | 'share';
  /** The role or the share rule that allowed it ("data", "share rule <id>"). */
  via: string;
  /** What was done: the WebDAV method. */
  method: string;
  /** The path inside the user's data, "/"-joined from the root ("/Documents/a.txt"). */
  path: string;
  /** The console's request id (the grant's id). */
  requestId: string;
  /** Whether it was served (a refused attempt is a notice too). */
  decision: 'allow' | 'deny';
}
