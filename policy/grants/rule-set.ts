/**
 * The share rules this PC enforces: the whole set the console last sent
 * (POST /link/shares/rules), each verified against the pinned console key
 * and this PC's id, held in memory only (after a restart the console sends
 * it again on the next connect; until then no share is served).
 *
 * A share grant is served only when it names a rule of this set that has
 * not expired on the agent's own clock (so expiry holds while the console
 * is down) and agrees with it: the same owner user, the grant's root and
 * prefix both the rule's folder, the grant's actor the rule's grantee user
 * (normalizeUserName) or one of the grant's groups the rule's grantee
 * group, and no more access than the rule gives.
 *
 * Security considerations: a set replaces the one before at once (a rule
 * revoked on the console is gone with the next set); a rule that does not
 * verify (another key, another PC, expired, ill-formed) is refused and
 * reported by index, never kept. Rules hold no secrets.
 */
import type { Clock } from '../../shares/clock.js';
import { foldName, normalizeName } from '../../shares/names.js';
import type { IssuerPublicKey } from '../takeout/issuer-keys.js';
import { normalizeUserName } from '../directory/user-name.js';
import { GrantError } from './errors.js';
import type { Grant, GrantAccess } from './grant.js';
import { verifyShareRule, type ShareRule } from './share-rule.js';

/** The most rules one set may hold. */
export const MAX_RULES = 10_000;

const RANK: Record<GrantAccess, number> = { list: 0, read: 1, readwrite: 2 };

const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((n, i) => foldName(normalizeName(n)) === foldName(normalizeName(b[i]!)));
const sameGroup = (a: string, b: string): boolean => a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();

export interface RuleSetAnswer {
  accepted: string[];
  refused: { index: number; code: string }[];
}

export class VerifiedShareRules {
  private rules = new Map<string, ShareRule>();

  constructor(
    private readonly pcId: string,
    /** The pinned console key (undefined before the first welcome: every rule is refused). */
    private readonly key: () => IssuerPublicKey | undefined,
    private readonly clock: Clock,
  ) {}

  /** Verifies every token and makes the valid ones the whole set, at once. */
  async replace(tokens: readonly unknown[]): Promise<RuleSetAnswer> {
    const key = this.key();
    const next = new Map<string, ShareRule>();
    const refused: RuleSetAnswer['refused'] = [];
    for (const [index, token] of tokens.slice(0, MAX_RULES).entries()) {
      if (!key) {
        refused.push({ index, code: 'ERR_GRANT_NO_CONSOLE_KEY' });
        continue;
      }
      try {
        const rule = await verifyShareRule(token, { key, pcId: this.pcId, now: new Date(this.clock()) });
        next.set(rule.id, rule);
      } catch (err) {
        refused.push({ index, code: err instanceof GrantError ? err.code : 'ERR_GRANT_MALFORMED' });
      }
    }
    for (let index = MAX_RULES; index < tokens.length; index++) refused.push({ index, code: 'ERR_GRANT_MALFORMED' });
    this.rules = next;
    return { accepted: [...next.keys()], refused };
  }

  /** The rule with this id while it has not expired on this PC's clock. */
  find(ruleId: string): ShareRule | undefined {
    const rule = this.rules.get(ruleId);
    return rule && rule.expires * 1000 > this.clock() ? rule : undefined;
  }

  /** The rule a share grant stands on; throws GrantError ERR_GRANT_NO_RULE or ERR_GRANT_ACCESS. */
  match(grant: Grant): ShareRule {
    const rule = grant.kind === 'share' && grant.ruleId !== undefined ? this.find(grant.ruleId) : undefined;
    if (!rule) throw new GrantError('ERR_GRANT_NO_RULE', 'the share rule is not (or no longer) in force on this PC');
    const grantee = rule.grantee.kind === 'user' ? normalizeUserName(rule.grantee.name) === normalizeUserName(grant.actor) : (grant.groups ?? []).some((g) => sameGroup(g, rule.grantee.name));
    if (normalizeUserName(rule.user) !== normalizeUserName(grant.user) || !sameNames(rule.folder, grant.root) || !sameNames(rule.folder, grant.prefix) || !grantee) {
      throw new GrantError('ERR_GRANT_NO_RULE', 'the share rule does not cover this grantee, owner or folder');
    }
    if (RANK[grant.access] > RANK[rule.access]) throw new GrantError('ERR_GRANT_ACCESS', `the share gives ${rule.access} access only`);
    return rule;
  }
}
