/**
 * The console's state store: what both implementations (the embedded
 * SQLite file, sqlite.ts, and PostgreSQL, postgres.ts) offer, and the row
 * types. One schema, one contract suite (test/console-store.test.ts) for
 * both. Times are epoch milliseconds.
 *
 * Security considerations: enrolment tokens are stored only as their
 * SHA-256 (a token read off the database cannot enrol a PC). Nothing of a
 * user's data is stored beyond user names, take-out reasons and notes.
 * Known users (every user a PC has reported, so that an administrator can
 * reach a closed vault) are the console's copy of names the PC list shows
 * anyway; the agent keeps no plaintext user names on its disk.
 */

import type { PcStatus } from '../../link/status.js';

export type { GateState, PcStatus } from '../../link/status.js';

export interface PcRow {
  pcId: string;
  /** Hex SHA-256 of the PC's device SubjectPublicKeyInfo (DER); null until enrolled. */
  deviceId: string | null;
  /** The device public key (SPKI PEM) pinned at enrolment; null until enrolled. */
  devicePublicPem: string | null;
  addedAt: number;
  enrolledAt: number | null;
  /** Set by `pc remove`: the PC is refused at its next handshake. */
  removedAt: number | null;
  lastSeenAt: number | null;
  /** The last status the PC reported; null before the first one. */
  status: PcStatus | null;
  /** Pending take-out requests of this PC (counted by the store). */
  pendingRequests: number;
}

export type EnrolmentResult =
  | { ok: true }
  | { ok: false; code: 'ERR_ENROL_UNKNOWN' | 'ERR_ENROL_USED' | 'ERR_ENROL_EXPIRED' | 'ERR_ENROL_REMOVED' | 'ERR_ENROL_TAKEN' };

export type PcFilter = 'all' | 'online' | 'offline' | 'no-backup' | 'takeout' | 'pending';
export type PcSort = 'pcId' | 'lastSeen' | 'lastBackup' | 'gate' | 'pending';

export interface PcQuery {
  filter: PcFilter;
  /** `offline`: not seen for more than this many days; `no-backup`: no complete backup for more than this many days. */
  days?: number;
  /** Case-insensitive substring of the pcId or of one of its users. */
  search?: string;
  sort: PcSort;
  descending: boolean;
  /** 0-based row offset and page size (`limit` <= 1000; CSV export pages through). */
  offset: number;
  limit: number;
  /** `online` means seen at or after this time (the console computes it from its heartbeat interval). */
  onlineSince: number;
  now: number;
}

export interface AlertCounts {
  notSeen30Days: number;
  noBackup7Days: number;
  pendingRequests: number;
  takeoutsEndingIn24h: number;
}

export type RequestState = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';

export interface TakeoutRequestRow {
  /** The agent's request id. */
  id: string;
  pcId: string;
  user: string;
  days: number;
  reason: string;
  requestedAt: number;
  /** The PC's takeout.maxDays when asked. */
  maxDays: number;
  /** K_to sealed to each issuer kid (JSON object); nothing here opens it without the issuer private key. */
  envelopes: Record<string, string>;
  state: RequestState;
  decidedBy: string | null;
  decidedAt: number | null;
  /** The approver's days, or the denial note. */
  note: string | null;
  /** Approved: the key's jti and its end (epoch ms). */
  jti: string | null;
  until: number | null;
}

// Access requests (the two-person rule, migration 0003)

export type AccessRequestStatus = 'pending' | 'approved' | 'denied';

/** An administrator's request to read the contents of one user's data on one PC (access.approvals 1). */
export interface AccessRequestRow {
  /** A random id (the console makes it). */
  id: string;
  /** The requesting administrator (normalized name). */
  admin: string;
  pcId: string;
  /** The data's owner on that PC (normalized name). */
  user: string;
  reason: string;
  /** How long an approval lasts, from the approval (at most access.maxHours). */
  hours: number;
  createdAt: number;
  status: AccessRequestStatus;
  decidedBy: string | null;
  decidedAt: number | null;
  /** The denial's note (or null). */
  note: string | null;
  /** Approved: reading is allowed until this time (epoch ms); null otherwise. */
  until: number | null;
}

export interface AccessRequestFilter {
  status?: AccessRequestStatus;
  pcId?: string;
  /** Only approved requests whose `until` is after this time. */
  liveAt?: number;
  limit: number;
}

// Share rules (sharing, migration 0004)

/** A share rule as the console keeps it (the agent gets it signed: policy/grants/share-rule.ts). */
export interface ShareRuleRow {
  /** A random id (the console makes it; the signed rule's jti). */
  id: string;
  pcId: string;
  /** The owner user (normalized name). */
  user: string;
  /** The shared folder's names in the owner's vault (e.g. ['Documents', 'Projects']). */
  folder: string[];
  grantee: { kind: 'user' | 'group'; name: string };
  access: 'read' | 'readwrite';
  expiresAt: number;
  createdBy: string;
  createdAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
}

export interface ShareRuleFilter {
  pcId?: string;
  /** Only rules not revoked and not expired at this time. */
  liveAt?: number;
  limit: number;
}

/** The engine under a store. */
export type StoreKind = 'sqlite' | 'postgres';

export interface ConsoleStore {
  readonly kind: StoreKind;
  /** Ends every connection; later calls fail. */
  close(): Promise<void>;

  // PCs
  /** Registers `pcId` (fails with ERR_STORE_PC_EXISTS if it is registered and not removed). Re-adding a removed PC clears its enrolment. */
  addPc(pcId: string, now: number): Promise<void>;
  /** Marks the PC removed; its pending requests expire, its share rules are revoked and its known users forgotten. False when unknown. */
  removePc(pcId: string, now: number): Promise<boolean>;
  getPc(pcId: string): Promise<PcRow | undefined>;
  /** The registered (not removed) PC enrolled with this device id, if any (asked at enrolment, not at every connect). */
  getPcByDevice(deviceId: string): Promise<PcRow | undefined>;
  listPcs(query: PcQuery): Promise<{ rows: PcRow[]; total: number }>;
  alertCounts(now: number, onlineSince: number): Promise<AlertCounts>;

  // Enrolment
  /** Stores a token's SHA-256 for `pcId`, replacing an unused one. */
  createEnrolment(pcId: string, tokenHash: Buffer, expiresAt: number): Promise<void>;
  /** Atomically: checks the token for `pcId` and binds `deviceId` (single use). */
  consumeEnrolment(pcId: string, tokenHash: Buffer, deviceId: string, devicePublicPem: string, now: number): Promise<EnrolmentResult>;

  // Status
  /** A state change, written at once. */
  saveStatus(pcId: string, status: PcStatus, now: number): Promise<void>;
  /** Presence: one statement for the whole batch. */
  touchPresence(seen: readonly { pcId: string; at: number }[]): Promise<void>;

  // Known users (migration 0005): every user a PC has ever reported, kept until the PC is removed
  /** Remembers `users` of `pcId` (those known already are left as they are); fails with ERR_STORE_PC_UNKNOWN when the PC is not registered. */
  addKnownUsers(pcId: string, users: readonly string[], now: number): Promise<void>;
  /** The users `pcId` has ever reported, sorted (bytewise); none for an unknown or removed PC. */
  listKnownUsers(pcId: string): Promise<string[]>;

  // Take-out requests
  /** Inserts a request the agent reported, or leaves an existing one as it is. */
  putRequest(row: Omit<TakeoutRequestRow, 'state' | 'decidedBy' | 'decidedAt' | 'note' | 'jti' | 'until'>): Promise<void>;
  getRequest(id: string): Promise<TakeoutRequestRow | undefined>;
  listRequests(filter: { state?: RequestState; pcId?: string; limit: number }): Promise<TakeoutRequestRow[]>;
  /** Compare-and-set from `pending`: false when the request is no longer pending. */
  decideRequest(id: string, decision: { state: Exclude<RequestState, 'pending'>; by: string; at: number; note: string | null; jti?: string; until?: number }): Promise<boolean>;
  /** Marks approved keys revoked by jti. */
  revokeRequest(jti: string, by: string, at: number): Promise<TakeoutRequestRow | undefined>;
  /** Pending requests asked before `before`: marks them expired and returns them. */
  expireRequests(before: number, now: number): Promise<TakeoutRequestRow[]>;

  // Access requests (the two-person rule)
  /** Inserts a new pending request (fails with ERR_STORE_PC_UNKNOWN when the PC is not registered). */
  putAccessRequest(row: Omit<AccessRequestRow, 'status' | 'decidedBy' | 'decidedAt' | 'note' | 'until'>): Promise<void>;
  getAccessRequest(id: string): Promise<AccessRequestRow | undefined>;
  /** Newest first. */
  listAccessRequests(filter: AccessRequestFilter): Promise<AccessRequestRow[]>;
  /** Compare-and-set from `pending`: false when the request is no longer pending. */
  decideAccessRequest(id: string, decision: { status: 'approved' | 'denied'; by: string; at: number; note: string | null; until: number | null }): Promise<boolean>;
  /** Whether an approved request of `admin` for `pcId`/`user` is live at `now` (until > now). */
  hasLiveAccess(admin: string, pcId: string, user: string, now: number): Promise<boolean>;

  // Share rules (sharing)
  /** Inserts a new rule (fails with ERR_STORE_PC_UNKNOWN when the PC is not registered). */
  putShareRule(row: Omit<ShareRuleRow, 'revokedAt' | 'revokedBy'>): Promise<void>;
  getShareRule(id: string): Promise<ShareRuleRow | undefined>;
  /** Newest first. */
  listShareRules(filter: ShareRuleFilter): Promise<ShareRuleRow[]>;
  /** Compare-and-set from not revoked: the revoked rule, or undefined when unknown or already revoked. */
  revokeShareRule(id: string, by: string, at: number): Promise<ShareRuleRow | undefined>;
}
