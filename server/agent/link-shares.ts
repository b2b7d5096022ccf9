/**
 * The agent's share-rule route on the console link: POST
 * /link/shares/rules {rules: [signed rule, ...]} replaces the whole set of
 * rules this PC enforces (policy/grants/rule-set.ts) and answers which
 * were accepted and which refused, by index and code (ShareRuleSetAnswer).
 *
 * Security considerations: each rule is verified with the pinned console
 * key and this PC's id before it is kept; the set lives in memory only.
 * The body is checked before anything changes: a body that is not
 * {rules: string[]} is a 400 and leaves the set as it was.
 */
import type { VerifiedShareRules } from '../../policy/grants/rule-set.js';
import { LINK_PATHS, type ShareRuleSetAnswer } from '../link/protocol.js';
import type { LinkRoutes } from './console-link.js';

export function shareRuleRoutes(rules: Pick<VerifiedShareRules, 'replace'>): LinkRoutes {
  return {
    [LINK_PATHS.shareRules]: async (body) => {
      const list = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { rules?: unknown }).rules : undefined;
      if (!Array.isArray(list) || !list.every((t) => typeof t === 'string')) {
        return { status: 400, body: { error: { code: 'ERR_API_BODY', message: 'the body must be {"rules": [signed share rules]}' } } };
      }
      const answer: ShareRuleSetAnswer = await rules.replace(list);
      return { status: 200, body: answer };
    },
  };
}
