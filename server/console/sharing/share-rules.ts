/**
 * Share rules (console.md, Sharing): an administrator with the `sharing`
 * role lets an AD user or group reach one folder of one user on one PC,
 * `read` or `readwrite`, until an expiry (required: default
 * sharing.defaultDays, at most sharing.maxDays).
 *
 * The owner's agent enforces the rules, so the console signs every live
 * rule of a PC with its issuer key (policy/grants/share-rule.ts) and sends
 * the whole set (LINK_PATHS.shareRules) after each change and after each
 * (re)connect (`push`, wired to the registry's onConnected). The agent keeps
 * the set in memory and checks each rule's expiry on its own clock, so
 * expiry holds while the console is down; a revocation reaches a connected
 * agent at once (the new set no longer holds the rule).
 *
 * `forGrantee(user, groups)` gives the live rules a directory user reaches
 * (as themselves or through one of their groups, nested groups resolved by
 * the directory): what /shared lists and forwards.
 *
 * Security considerations: names are compared in their normalized form
 * (normalizeUserName) for users; group names case-insensitively, as the
 * roles' groups are. The folder is a list of plain names (no '', '.', '..',
 * '/', '\', NUL), checked here and again by the agent. Every creation and
 * revocation is written to the console's trail naming the administrator;
 * the folder (users' data) is named there and never in the process log.
 * The issuer key only signs; it is never logged.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../../policy/audit/log.js';
import { normalizeUserName } from '../../../policy/directory/user-name.js';
import { signShareRule } from '../../../policy/grants/share-rule.js';
import type { IssuerPrivateKey } from '../../../policy/takeout/issuer-keys.js';
import type { Clock } from '../../../shares/clock.js';
import { LINK_PATHS, type ShareRuleSet, type ShareRuleSetAnswer } from '../../link/protocol.js';
import type { Admin } from '../admins.js';
import type { LinkHub } from '../link/hub.js';
import type { ConsoleStore, ShareRuleRow } from '../store/store.js';
import { ShareError } from './errors.js';

const DAY_MS = 86_400_000;
/** The most live rules one PC (or the whole console, for /shared) is asked for at once. */
export const MAX_RULES = 1000;
const MAX_NAME_CHARS = 256;
const MAX_FOLDER_DEPTH = 32;
const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PUSH_TIMEOUT_MS = 15_000;

export interface ShareRuleInput {
  pcId: string;
  user: string;
  /** The folder as names, or as a path `Documents/Projects` ('/' or '\' between names). */
  folder: readonly string[] | string;
  grantee: { kind: 'user' | 'group'; name: string };
  access: 'read' | 'readwrite';
  /** Days from now; default sharing.defaultDays. */
  days?: number;
}

export interface ShareRulesOptions {
  store: Pick<ConsoleStore, 'getPc' | 'listKnownUsers' | 'putShareRule' | 'getShareRule' | 'listShareRules' | 'revokeShareRule'>;
  hub: Pick<LinkHub, 'request' | 'isConnected'>;
  issuerKey: IssuerPrivateKey;
  audit: Pick<AuditLog, 'append'>;
  /** The console's `sharing` configuration. */
  sharing: { defaultDays: number; maxDays: number };
  clock: Clock;
  logger: Pick<FastifyBaseLogger, 'info' | 'warn'>;
}

/** A folder's names from a list or a path; undefined when any name is not a plain name. */
export function folderNames(folder: readonly string[] | string): string[] | undefined {
  const names = typeof folder === 'string' ? folder.split(/[/\\]+/).filter((n) => n !== '') : Array.isArray(folder) ? [...folder] : [];
  const plain = (n: unknown) => typeof n === 'string' && n.trim() !== '' && n !== '.' && n !== '..' && n.length <= MAX_NAME_CHARS && !/[/\\\u0000]/.test(n);
  return names.length > 0 && names.length <= MAX_FOLDER_DEPTH && names.every(plain) ? names : undefined;
}

export class ShareRules {
  /** The last push of each PC: pushes to one PC run one after the other (see `push`). */
  private readonly pushes = new Map<string, Promise<ShareRuleSetAnswer | undefined>>();

  constructor(private readonly opts: ShareRulesOptions) {}

  get defaultDays(): number {
    return this.opts.sharing.defaultDays;
  }

  get maxDays(): number {
    return this.opts.sharing.maxDays;
  }

  /** Creates a rule (role `sharing`) and sends the PC its new set. */
  async create(admin: Admin, input: ShareRuleInput): Promise<ShareRuleRow> {
    const { store, audit, clock } = this.opts;
    if (!admin.roles.has('sharing')) {
      await audit.append({ actor: admin.name, action: 'share.create', target: `${String(input.pcId).slice(0, 64)}/${String(input.user).slice(0, 64)}`, decision: 'deny', reason: 'ERR_SHARE_ROLE: the sharing role is needed' });
      throw new ShareError('ERR_SHARE_ROLE', `setting share rules needs the sharing role, which ${admin.name} does not have`);
    }
    const folder = folderNames(input.folder);
    if (!folder) throw new ShareError('ERR_SHARE_INPUT', `the folder must be 1 to ${MAX_FOLDER_DEPTH} names of the owner's drive (e.g. Documents/Projects), none empty, '.' or '..'`);
    const g = input.grantee as { kind?: unknown; name?: unknown } | undefined;
    if (!g || (g.kind !== 'user' && g.kind !== 'group')) throw new ShareError('ERR_SHARE_INPUT', 'the grantee is a user or a group');
    const rawName = typeof g.name === 'string' ? g.name.trim() : '';
    if (rawName === '' || rawName.length > MAX_NAME_CHARS) throw new ShareError('ERR_SHARE_INPUT', `the grantee's name must be 1 to ${MAX_NAME_CHARS} characters`);
    const kind: 'user' | 'group' = g.kind;
    const grantee = { kind, name: kind === 'user' ? normalizeUserName(rawName) : rawName };
    if (input.access !== 'read' && input.access !== 'readwrite') throw new ShareError('ERR_SHARE_INPUT', 'access is read or readwrite');
    const days = input.days ?? this.defaultDays;
    if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0 || days > this.maxDays) {
      throw new ShareError('ERR_SHARE_INPUT', `the expiry must be more than 0 and at most ${this.maxDays} days from now (sharing.maxDays)`);
    }
    const owner = typeof input.user === 'string' && input.user.length <= MAX_NAME_CHARS ? normalizeUserName(input.user) : '';
    if (owner === '') throw new ShareError('ERR_SHARE_INPUT', 'the owner user is missing or too long');
    const pc = typeof input.pcId === 'string' ? await store.getPc(input.pcId) : undefined;
    if (!pc || pc.removedAt !== null) throw new ShareError('ERR_SHARE_UNKNOWN', `there is no PC ${String(input.pcId)}`);
    if (!(await store.listKnownUsers(pc.pcId)).some((u) => normalizeUserName(u) === owner)) throw new ShareError('ERR_SHARE_UNKNOWN', `PC ${pc.pcId} has never reported a user ${owner}`);
    const now = clock();
    const row = { id: randomUUID(), pcId: pc.pcId, user: owner, folder, grantee, access: input.access, expiresAt: now + Math.round(days * DAY_MS), createdBy: normalizeUserName(admin.name), createdAt: now };
    await store.putShareRule(row);
    await audit.append({
      actor: admin.name, action: 'share.create', target: `${row.pcId}/${owner}/${folder.join('/')}`, decision: 'allow',
      reason: `rule ${row.id}: ${input.access} for ${grantee.kind} ${grantee.name} until ${new Date(row.expiresAt).toISOString()}`,
    });
    await this.push(row.pcId);
    return (await store.getShareRule(row.id))!;
  }

  /** Revokes a rule (role `sharing`); a connected agent gets the set without it at once. */
  async revoke(admin: Admin, id: string): Promise<ShareRuleRow> {
    const { store, audit, clock } = this.opts;
    if (!admin.roles.has('sharing')) {
      await audit.append({ actor: admin.name, action: 'share.revoke', target: String(id).slice(0, 64), decision: 'deny', reason: 'ERR_SHARE_ROLE: the sharing role is needed' });
      throw new ShareError('ERR_SHARE_ROLE', `revoking share rules needs the sharing role, which ${admin.name} does not have`);
    }
    const known = typeof id === 'string' && ID_PATTERN.test(id) ? await store.getShareRule(id) : undefined;
    if (!known) throw new ShareError('ERR_SHARE_NO_RULE', 'there is no share rule with this id');
    const row = await store.revokeShareRule(known.id, normalizeUserName(admin.name), clock());
    if (!row) throw new ShareError('ERR_SHARE_REVOKED', `the share rule was revoked already${known.revokedBy ? ` (by ${known.revokedBy})` : ''}`);
    await audit.append({ actor: admin.name, action: 'share.revoke', target: `${row.pcId}/${row.user}/${row.folder.join('/')}`, decision: 'allow', reason: `rule ${row.id}` });
    await this.push(row.pcId);
    return row;
  }

  /** Rules, newest first (`live`: neither revoked nor expired now). */
  list(filter: { pcId?: string; live?: boolean; limit?: number } = {}): Promise<ShareRuleRow[]> {
    return this.opts.store.listShareRules({ limit: filter.limit ?? 200, ...(filter.pcId !== undefined && { pcId: filter.pcId }), ...(filter.live && { liveAt: this.opts.clock() }) });
  }

  /** The group names live rules name (what /shared asks the directory about a grantee). */
  async granteeGroups(): Promise<string[]> {
    const rules = await this.list({ live: true, limit: MAX_RULES });
    return [...new Set(rules.filter((r) => r.grantee.kind === 'group').map((r) => r.grantee.name))];
  }

  /** The live rules directory user `user` (in `groups`, nested resolved) reaches, newest first. */
  async forGrantee(user: string, groups: ReadonlySet<string>): Promise<ShareRuleRow[]> {
    const name = normalizeUserName(user);
    const lower = new Set([...groups].map((g) => g.toLowerCase()));
    const rules = await this.list({ live: true, limit: MAX_RULES });
    return rules.filter((r) => (r.grantee.kind === 'user' ? r.grantee.name === name : lower.has(r.grantee.name.toLowerCase())));
  }

  /**
   * Signs every live rule of PC `pcId` and sends the set; a PC that is not
   * connected gets it at its next connect. Never throws: a failure is
   * logged (without folder names) and the next change or connect retries.
   * Pushes to one PC are serialized, each reading the store when its turn
   * comes, so a set read before a revocation can never arrive after the
   * set without the revoked rule.
   */
  push(pcId: string): Promise<ShareRuleSetAnswer | undefined> {
    const next = (this.pushes.get(pcId) ?? Promise.resolve(undefined)).then(() => this.pushNow(pcId));
    this.pushes.set(pcId, next);
    void next.then(() => {
      if (this.pushes.get(pcId) === next) this.pushes.delete(pcId);
    });
    return next;
  }

  private async pushNow(pcId: string): Promise<ShareRuleSetAnswer | undefined> {
    const { hub, logger } = this.opts;
    if (!hub.isConnected(pcId)) return undefined;
    try {
      const rows = await this.list({ pcId, live: true, limit: MAX_RULES });
      const nowS = Math.floor(this.opts.clock() / 1000);
      const rules = await Promise.all(
        rows.map((r) =>
          signShareRule(
            { id: r.id, pcId: r.pcId, user: r.user, folder: r.folder, grantee: r.grantee, access: r.access, createdBy: r.createdBy, issuedAt: nowS, expires: Math.floor(r.expiresAt / 1000) },
            this.opts.issuerKey,
          ),
        ),
      );
      const body: ShareRuleSet = { rules };
      const answer = await hub.request(pcId, LINK_PATHS.shareRules, body, { timeoutMs: PUSH_TIMEOUT_MS });
      const set = answer.body as Partial<ShareRuleSetAnswer> | null;
      if (answer.status !== 200 || !Array.isArray(set?.accepted) || !Array.isArray(set?.refused)) {
        logger.warn({ pcId, status: answer.status }, 'sharing: the PC did not take its share rules');
        return undefined;
      }
      if (set.refused.length > 0) logger.warn({ pcId, refused: set.refused }, 'sharing: the PC refused some share rules');
      logger.info({ pcId, rules: rules.length, accepted: set.accepted.length }, 'sharing: share rules sent');
      return set as ShareRuleSetAnswer;
    } catch (err) {
      logger.warn({ pcId, code: (err as { code?: unknown }).code, err: (err as Error).message }, 'sharing: sending the share rules failed');
      return undefined;
    }
  }
}
