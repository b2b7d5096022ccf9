/**
 * A pending take-out request as the agent hands it out: the summary
 * administrators list, and the detail the issuer side approves (with the
 * request's K_to sealed to each trusted issuer, and the PC's limits).
 */

export interface RequestSummary {
  id: string;
  user: string;
  days: number;
  reason: string;
  requested: string;
}

export interface RequestDetail extends RequestSummary {
  pcId: string;
  maxDays: number;
  /** K_to of the request encrypted to each trusted issuer, by issuer kid. */
  envelopes: Record<string, string>;
}
