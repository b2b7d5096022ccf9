/**
 * Errors of the agent–console link. Callers switch on `code`:
 * `ERR_LINK_OFFLINE` (the PC has no link now), `ERR_LINK_TIMEOUT` (the
 * agent did not answer in time), `ERR_LINK_BROKEN` (the link went down
 * while the request was on it), `ERR_LINK_ANSWER` (the peer's answer is not
 * what the protocol says).
 */
export type LinkErrorCode = 'ERR_LINK_OFFLINE' | 'ERR_LINK_TIMEOUT' | 'ERR_LINK_BROKEN' | 'ERR_LINK_ANSWER';

export class LinkError extends Error {
  constructor(
    readonly code: LinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
