/**
 * The console's administrators: a login is a bind against the directory
 * (the company's over LDAP, or a local users file for the demo), and the
 * groups the account is in, nested groups included, give its roles:
 * `viewer` (the PC list and status), `approver` (take-out requests), `data`
 * (browsing users' data), `sharing` (share rules). Every role includes
 * `viewer`: whoever decides or browses also sees the list.
 *
 * Security considerations:
 * - The password is checked by the directory on every login and is kept
 *   nowhere: nothing is cached, in memory or on disk (the web page's
 *   sessions hold the name and roles, never the password).
 * - Wrong guesses are slowed per account and per client address by the
 *   shared hold-back (server/http/login-throttle.ts): after 5 wrong answers
 *   in a row each further wrong one waits 250 ms doubling to 8 s; a flood
 *   from one address is refused with 429. The right password is never held.
 * - Every checked login is written to the console's audit trail, allowed
 *   or refused, with the account, the address and the reason; never the
 *   password. A login of more than 256 characters is refused unchecked.
 * - An account the directory knows but in none of the roles' groups is
 *   refused (401, saying so) and recorded as refused.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../policy/audit/log.js';
import type { MemberDirectory } from '../../policy/directory/directory.js';
import { LdapAuthenticator } from '../../policy/directory/ldap/accounts.js';
import { LocalMemberDirectory } from '../../policy/directory/local/members.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import type { Clock } from '../../shares/clock.js';
import type { LdapConnectionConfig } from '../config/ldap-config.js';
import { ldapConnection } from '../config/directory.js';
import { MAX_LOGIN_CHARS } from '../http/basic-auth.js';
import { LoginThrottle, TooManyLoginAttempts } from '../http/login-throttle.js';
import { ROLES, type Role } from './config.js';


export interface Admin {
  name: string;
  roles: ReadonlySet<Role>;
}

export type LoginResult = { ok: true; admin: Admin } | { ok: false; status: 401 | 429 | 503; message: string; retryAfter?: number };

/** Role -> the groups (local names or LDAP DNs) whose members have it. */
export type RoleGroups = Readonly<Record<Role, readonly string[]>>;

/** The console configuration's `directory` section, as much of it as the administrators' login reads. */
export interface AdminDirectoryConfig {
  kind: 'local' | 'ldap';
  local: { usersFile: string };
  ldap: LdapConnectionConfig | null;
}

/** The directory the console's configuration names, its service password read from its file. */
export async function buildAdminDirectory(config: AdminDirectoryConfig): Promise<MemberDirectory> {
  const ldap = config.ldap;
  if (config.kind === 'local' || !ldap) return new LocalMemberDirectory(config.local.usersFile);
  return new LdapAuthenticator({
    ...(await ldapConnection(ldap)),
    adminsGroupDn: undefined,
  });
}

/** The roles the groups give (any role includes `viewer`). */
export function rolesOf(groups: ReadonlySet<string>, roleGroups: RoleGroups): Set<Role> {
  const lower = new Set([...groups].map((g) => g.toLowerCase()));
  const given = ROLES.filter((role) => roleGroups[role].some((g) => lower.has(g.toLowerCase())));
  return new Set<Role>(given.length > 0 ? ROLES.filter((role) => role === 'viewer' || given.includes(role)) : []);
}

const THROTTLED_RETRY_SECONDS = 5;

export class AdminAuthenticator {
  private readonly throttle: LoginThrottle;
  private readonly groups: readonly string[];

  constructor(
    private readonly opts: {
      directory: MemberDirectory;
      roles: RoleGroups;
      audit: Pick<AuditLog, 'append'>;
      clock: Clock;
      logger: FastifyBaseLogger;
      /** How a held-back answer waits (tests inject their own). */
      sleep?: (ms: number) => Promise<void>;
    },
  ) {
    this.throttle = new LoginThrottle(opts.clock, opts.sleep);
    this.groups = [...new Set(ROLES.flatMap((role) => opts.roles[role]))];
  }

  /** How long the next wrong answer for `name` from `address` is held back, in ms. */
  delayFor(name: string, address: string): number {
    return this.throttle.delayFor(normalizeUserName(name.trim()), address);
  }

  /** Checks an administrator's login from the client `address`; the answer says why not, with the status to give. */
  async login(name: string, password: string, address: string): Promise<LoginResult> {
    const login = name.trim();
    const user = normalizeUserName(login);
    if (user === '' || password === '') return { ok: false, status: 401, message: 'enter your user name and password' };
    let result;
    try {
      result = await this.throttle.attempt(user, address, async () =>
        login.length > MAX_LOGIN_CHARS ? { ok: false as const, reason: 'wrong user name or password' } : this.opts.directory.authenticateMember(login, password, this.groups),
      );
    } catch (err) {
      if (err instanceof TooManyLoginAttempts) {
        this.opts.logger.warn({ address }, 'console login refused: too many attempts from one address at once');
        return { ok: false, status: 429, message: err.message, retryAfter: THROTTLED_RETRY_SECONDS };
      }
      this.opts.logger.error({ err: { code: (err as { code?: unknown }).code, message: (err as Error).message } }, 'console login: the directory failed');
      await this.record(user, address, 'deny', 'the directory does not answer');
      return { ok: false, status: 503, message: 'the directory does not answer; try again in a minute' };
    }
    if (!result.ok) {
      await this.record(user, address, 'deny', result.reason);
      const held = this.throttle.delayFor(user, address) > 0;
      return { ok: false, status: 401, message: held ? `${result.reason} (after repeated wrong passwords, each answer is slowed down)` : result.reason };
    }
    const roles = rolesOf(result.groups, this.opts.roles);
    if (roles.size === 0) {
      await this.record(result.user, address, 'deny', 'not in any of the console roles');
      return { ok: false, status: 401, message: `${result.user} is not an administrator of this console (in none of the groups of its roles)` };
    }
    const admin: Admin = { name: result.user, roles };
    await this.record(admin.name, address, 'allow', `roles: ${[...roles].join(', ')}`);
    return { ok: true, admin };
  }

  private async record(actor: string, address: string, decision: 'allow' | 'deny', reason: string): Promise<void> {
    await this.opts.audit.append({ actor: actor.slice(0, MAX_LOGIN_CHARS), action: 'console.login', target: address, decision, reason });
  }
}
