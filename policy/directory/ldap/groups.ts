/**
 * Nested group membership over LDAP: which of some groups an account is in,
 * directly or through groups inside groups. Active Directory answers with
 * its in-chain matching rule (LDAP_MATCHING_RULE_IN_CHAIN, one base search
 * per group); OpenLDAP has no such rule, so the walk goes up `member` links
 * breadth-first, at most 8 levels, each group visited once (a cycle ends).
 *
 * Security considerations: every DN put in a filter is escaped (escape.ts);
 * group DNs are compared case-insensitively, as the directory does.
 */
import type { Client } from 'ldapts';
import { filterValue } from './escape.js';

const IN_CHAIN = '1.2.840.113556.1.4.1941';
const MAX_DEPTH = 8;

/** The DNs of `groupDns` (as given) that `userDn` is a member of, nested membership included. */
export async function memberOfGroups(client: Client, flavor: 'ad' | 'openldap', baseDn: string, userDn: string, groupDns: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (groupDns.length === 0) return found;
  if (flavor === 'ad') {
    for (const group of groupDns) {
      const { searchEntries } = await client.search(userDn, { scope: 'base', filter: `(memberOf:${IN_CHAIN}:=${filterValue(group)})`, attributes: ['dn'] });
      if (searchEntries.length === 1) found.add(group);
    }
    return found;
  }
  const wanted = new Map(groupDns.map((dn) => [dn.toLowerCase(), dn]));
  const seen = new Set<string>();
  let frontier = [userDn];
  for (let depth = 0; depth < MAX_DEPTH && frontier.length > 0 && found.size < wanted.size; depth++) {
    const filter = `(|${frontier.map((dn) => `(member=${filterValue(dn)})`).join('')})`;
    const { searchEntries } = await client.search(baseDn, { scope: 'sub', filter, attributes: ['dn'] });
    frontier = [];
    for (const g of searchEntries) {
      const dn = g.dn.toLowerCase();
      if (seen.has(dn)) continue;
      seen.add(dn);
      const asGiven = wanted.get(dn);
      if (asGiven !== undefined) found.add(asGiven);
      frontier.push(g.dn);
    }
  }
  return found;
}
