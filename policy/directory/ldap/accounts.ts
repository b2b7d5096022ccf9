/**
 * Logins checked against the company directory's accounts over LDAP
 * (Active Directory or OpenLDAP). Users are found with the PC's service account (AD: sAMAccountName or
 * userPrincipalName; OpenLDAP: uid), then bound as their own DN. Membership
 * of the admins group, nested groups included (groups.ts), gives the
 * administrator role; the console asks for the groups of its roles.
 *
 * Security considerations: every user-supplied value in a filter is escaped
 * (escape.ts); an empty password is refused before any bind (an LDAP
 * simple bind with an empty password is an anonymous bind and "succeeds");
 * a search must find exactly one account; bind failures become clear
 * sentences (AD's `data 52e`, `533`, ...) without echoing the password.
 */
import { SizeLimitExceededError } from 'ldapts';
import { bindFailureReason, connect, withBind, type LdapServerSettings } from './connection.js';
import { filterValue } from './escape.js';
import { memberOfGroups } from './groups.js';
import type { AuthResult, MemberResult } from '../directory.js';
import { withoutDomain, withoutUpnSuffix } from '../user-name.js';

export interface LdapAccountSettings extends LdapServerSettings {
  flavor: 'ad' | 'openldap';
  /** The directory's base DN (groups are searched below it). */
  baseDn: string;
  /** Where users are searched (subtree). */
  userBaseDn: string;
  /** The PC's service account, for look-ups and the network secrets. */
  serviceDn: string;
  servicePassword: string;
  /** Membership (nested too) makes a user an administrator. */
  adminsGroupDn: string | undefined;
}

/** The account name and the search filter for what the user typed. */
export function accountFilter(flavor: 'ad' | 'openldap', login: string): { filter: string; name: string } | undefined {
  const name = withoutDomain(login);
  if (name === '') return undefined;
  if (flavor === 'ad') {
    if (name.includes('@')) return { filter: `(&(objectCategory=person)(objectClass=user)(userPrincipalName=${filterValue(name)}))`, name };
    return { filter: `(&(objectCategory=person)(objectClass=user)(sAMAccountName=${filterValue(name)}))`, name };
  }
  const uid = withoutUpnSuffix(name);
  if (uid === '') return undefined;
  return { filter: `(&(objectClass=inetOrgPerson)(uid=${filterValue(uid)}))`, name: uid };
}

/** Checks a login and password against the directory's accounts and tells the administrator role. */
export class LdapAuthenticator {
  constructor(private readonly s: LdapAccountSettings) {}

  async authenticate(login: string, password: string): Promise<AuthResult> {
    const admins = this.s.adminsGroupDn;
    const result = await this.authenticateMember(login, password, admins ? [admins] : []);
    return result.ok ? { ok: true, user: result.user, admin: result.groups.size > 0 } : result;
  }

  /** Checks a login and password and tells which of `groupDns` the account is in (nested groups count). */
  async authenticateMember(login: string, password: string, groupDns: readonly string[]): Promise<MemberResult> {
    if (password === '') return { ok: false, reason: 'a password is required' };
    const account = accountFilter(this.s.flavor, login);
    if (!account) return { ok: false, reason: 'a user name is required' };
    const found = await withBind(this.s, this.s.serviceDn, this.s.servicePassword, async (client) => {
      const attributes = this.s.flavor === 'ad' ? ['sAMAccountName'] : ['uid'];
      const result = await client.search(this.s.userBaseDn, { scope: 'sub', filter: account.filter, attributes, sizeLimit: 2 }).catch((err: unknown) => {
        if (err instanceof SizeLimitExceededError) return undefined; // ambiguous: refuse
        throw err;
      });
      if (result?.searchEntries.length !== 1) return undefined;
      const { searchEntries } = result;
      const entry = searchEntries[0]!;
      const name = String([entry[attributes[0]!]].flat()[0] ?? account.name);
      return { dn: entry.dn, user: name.toLowerCase(), groups: await memberOfGroups(client, this.s.flavor, this.s.baseDn, entry.dn, groupDns) };
    });
    if (!found) return { ok: false, reason: 'wrong user name or password' };
    const client = await connect(this.s);
    try {
      await client.bind(found.dn, password);
    } catch (err) {
      return { ok: false, reason: bindFailureReason(err) };
    } finally {
      await client.unbind().catch(() => undefined);
    }
    return { ok: true, user: found.user, groups: found.groups };
  }
}
