/**
 * The store's tables as the typed queries see them (Kysely's database
 * interface). The tables themselves are made by migrations.ts; a column
 * added there is added here in the same change. Times are epoch ms.
 */

export interface PcTable {
  pc_id: string;
  device_id: string | null;
  device_public_pem: string | null;
  added_at: number;
  enrolled_at: number | null;
  removed_at: number | null;
  last_seen_at: number | null;
  /** The last PcStatus, JSON; null before the first one. */
  status: string | null;
  /** Copied out of `status` for the PC list's filters and sorts. */
  gate: string | null;
  takeout_until: number | null;
  last_backup_at: number | null;
  /** What the PC list's search matches: the pcId and each user, lower-cased, one a line. */
  search_text: string;
}

export interface EnrolmentTable {
  /** Hex SHA-256 of the token (the token itself is never stored). */
  token_hash: string;
  pc_id: string;
  expires_at: number;
  used_at: number | null;
}

export interface TakeoutRequestTable {
  id: string;
  pc_id: string;
  user_name: string;
  days: number;
  reason: string;
  requested_at: number;
  max_days: number;
  /** JSON object: issuer kid -> sealed K_to. */
  envelopes: string;
  state: string;
  decided_by: string | null;
  decided_at: number | null;
  note: string | null;
  jti: string | null;
  until_at: number | null;
}

/** Migration 0003: administrators' access requests (the two-person rule). */
export interface AccessRequestTable {
  id: string;
  admin: string;
  pc_id: string;
  user_name: string;
  reason: string;
  hours: number;
  created_at: number;
  /** pending | approved | denied */
  status: string;
  decided_by: string | null;
  decided_at: number | null;
  note: string | null;
  until_at: number | null;
}

/** Migration 0004: share rules (sharing). */
export interface ShareRuleTable {
  id: string;
  pc_id: string;
  user_name: string;
  /** JSON array of the folder's names in the owner's vault. */
  folder: string;
  /** user | group */
  grantee_kind: string;
  grantee_name: string;
  /** read | readwrite */
  access: string;
  expires_at: number;
  created_by: string;
  created_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
}

/** Migration 0005: every user a PC has reported (one row per PC and user name, as the agent spells it). */
export interface KnownUserTable {
  pc_id: string;
  user_name: string;
  first_seen_at: number;
}

export interface StoreDatabase {
  pc: PcTable;
  enrolment: EnrolmentTable;
  takeout_request: TakeoutRequestTable;
  access_request: AccessRequestTable;
  share_rule: ShareRuleTable;
  known_user: KnownUserTable;
}
