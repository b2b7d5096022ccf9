/**
 * Errors of the agent's own wiring. Callers switch on `code`, never on message text.
 * `ERR_LISTEN`: the HTTPS port could not be bound. The admin socket of a running
 * agent: `ERR_ADMIN_NOT_RUNNING` (no agent answers on it), `ERR_ADMIN_UNREACHABLE`
 * (it could not be reached), `ERR_ADMIN_REFUSED` (it answered with an error).
 * `ERR_NODE_VERSION`: this Node.js lacks what the console link needs (http2.performServerHandshake, Node 20.12+).
 */
export type AgentErrorCode = 'ERR_LISTEN' | 'ERR_ADMIN_NOT_RUNNING' | 'ERR_ADMIN_UNREACHABLE' | 'ERR_ADMIN_REFUSED' | 'ERR_NODE_VERSION';

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
