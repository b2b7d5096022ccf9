/**
 * The agent–console link: what travels on it. Shared by both sides (each
 * imports this module, never the other side).
 *
 * The agent dials the console's link port over TLS (the agent presents a
 * certificate for its device key; it pins the console's CA). On that one
 * socket the roles reverse: the console is the HTTP/2 client and the agent
 * serves the routes below (node:http2 over the dialed socket). Each request
 * is its own flow-controlled stream.
 *
 * Order on a new link:
 *   1. console GET  /link/identity      -> IdentityAnswer
 *   2. console POST /link/welcome       (Welcome)  -> 204, or
 *      console POST /link/refusal       (Refusal)  -> 204, then the console closes
 *   3. console GET  /link/events        -> a kept-open stream of AgentEvent, one JSON per line;
 *      the agent writes a `status` event at once, then every heartbeat
 *      (interval from Welcome, +-20 % jitter) and whenever its state changes
 * Console -> agent, any time after the welcome:
 *      POST /link/takeout/key          (TakeoutKeyDelivery)    -> 200 {user, expires}
 *      POST /link/takeout/denial       (TakeoutDenial)         -> 204
 *      POST /link/takeout/revocation   (TakeoutRevocation)     -> 204
 *      POST /link/takeout/state        ({})                    -> 200 TakeoutStateAnswer
 *        (after each (re)connect: the console stores the pending requests it
 *        missed and sends the decisions the agent missed while offline)
 * Errors are {"error":{"code","message"}} with the agent's status for the code.
 * Both sides send HTTP/2 PINGs; a side that has heard nothing for
 * 3 heartbeat intervals drops the link.
 */
import type { RequestDetail } from '../../policy/takeout/request.js';
import type { PcStatus } from './status.js';

export const LINK_ALPN = 'mydoc-link/1';

export const LINK_PATHS = {
  identity: '/link/identity',
  welcome: '/link/welcome',
  refusal: '/link/refusal',
  events: '/link/events',
  takeoutKey: '/link/takeout/key',
  takeoutDenial: '/link/takeout/denial',
  takeoutRevocation: '/link/takeout/revocation',
  takeoutState: '/link/takeout/state',
} as const;

export interface IdentityAnswer {
  pcId: string;
  agentVersion: string;
  /** The one-time enrolment token, only until the console has accepted it once. */
  enrolmentToken?: string;
}

export interface Welcome {
  /** Heartbeat interval the console asks for (seconds). */
  heartbeatSeconds: number;
  /** True when this link enrolled the PC (the agent forgets its token). */
  enrolled: boolean;
}

export type RefusalCode = 'ERR_ENROL_UNKNOWN' | 'ERR_ENROL_USED' | 'ERR_ENROL_EXPIRED' | 'ERR_ENROL_REMOVED' | 'ERR_ENROL_TAKEN' | 'ERR_LINK_NOT_ENROLLED' | 'ERR_LINK_WRONG_DEVICE';

export interface Refusal {
  code: RefusalCode;
  message: string;
}

export type AgentEvent =
  | { type: 'status'; status: PcStatus }
  | { type: 'takeout.request'; request: RequestDetail };

export interface TakeoutKeyDelivery {
  requestId: string;
  token: string;
  admin: string;
}

export interface TakeoutDenial {
  requestId: string;
  admin: string;
  /** 'denied' by an approver (with a note) or 'expired' unanswered. */
  outcome: 'denied' | 'expired';
  note: string;
}

export interface TakeoutRevocation {
  jti: string;
  admin: string;
}

/** The agent's take-out state as the console reconciles it after a (re)connect. */
export interface TakeoutStateAnswer {
  /** Every pending request with its envelopes. */
  pending: RequestDetail[];
  /** Ids of the keys and requests revoked on the PC (until their key's end). */
  revoked: string[];
}
