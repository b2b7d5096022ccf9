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
 *      POST /link/shares/rules         (ShareRuleSet)          -> 200 ShareRuleSetAnswer
 *        (the whole set of this PC's live rules, after each (re)connect and
 *        after every change; the agent keeps the set in memory only)
 *      <any WebDAV method> /link/dav<console path>   header mydoc-grant: <grant JWT>
 *        one WebDAV request for one user's data, streamed both ways (a GET of
 *        1 GiB is one flow-controlled stream); <console path> is the raw path
 *        the console received (/pcs/<pcId>/<user>/... or /shared/<owner>/<folder>/...);
 *        the grant (policy/grants/grant.ts) says what it may touch; the answer
 *        is the WebDAV answer (hrefs under the console's path), or a refusal
 *        {"error":{"code","message"}} with the agent's status for the code
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
  shareRules: '/link/shares/rules',
  /** A prefix: the console's request path follows it. */
  dav: '/link/dav',
} as const;

/** The header that carries the grant of a /link/dav request. */
export const GRANT_HEADER = 'mydoc-grant';

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
  /**
   * The console's issuer public key (PEM, as issuer-public.pem): the agent
   * pins it at its first welcome and checks every grant, share rule and
   * take-out key sent by the console against it; a different key in a later
   * welcome is refused (logged), never taken.
   */
  consoleKey: string;
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

export interface ShareRuleSet {
  /** Signed share rules (policy/grants/share-rule.ts), each for this PC. */
  rules: string[];
}

export interface ShareRuleSetAnswer {
  /** Ids of the rules now enforced. */
  accepted: string[];
  /** Rules refused (bad signature, another PC, expired), with the reason code. */
  refused: { index: number; code: string }[];
}

/** The agent's take-out state as the console reconciles it after a (re)connect. */
export interface TakeoutStateAnswer {
  /** Every pending request with its envelopes. */
  pending: RequestDetail[];
  /** Ids of the keys and requests revoked on the PC (until their key's end). */
  revoked: string[];
}
