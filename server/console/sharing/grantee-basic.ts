/**
 * HTTP Basic authentication of share grantees for /shared: any account of
 * the console's directory (MemberDirectory: a bind, and the account's
 * membership, nested groups resolved, of the groups the live share rules
 * name), with a 60 s memory of verified logins as for administrators
 * (a WebDAV client sends its password with every request).
 *
 * Security considerations: the memory holds an HMAC-SHA-256 of name and
 * password under a per-process random key (never the password), compared
 * in constant time, and the groups found for the group list asked then; a
 * changed list (a new rule for another group) asks the directory again.
 * Wrong passwords go through the login hold-back (LoginThrottle) and a line
 * in the console's trail (action share.login). The Authorization header is
 * never logged.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../../policy/audit/log.js';
import type { MemberDirectory } from '../../../policy/directory/directory.js';
import type { Clock } from '../../../shares/clock.js';
import { MAX_LOGIN_CHARS, parseBasic } from '../../http/basic-auth.js';
import { LoginThrottle, TooManyLoginAttempts } from '../../http/login-throttle.js';

export const CACHE_TTL_MS = 60_000;
const MAX_CACHED = 1000;
const THROTTLED_RETRY_SECONDS = 5;

export const SHARED_REALM = 'Basic realm="mydoc shared folders", charset="UTF-8"';

export interface Grantee {
  /** The directory's name of the account. */
  name: string;
  /** Of the groups asked, those the account is in (nested resolved). */
  groups: ReadonlySet<string>;
}

export type GranteeResult = { ok: true; grantee: Grantee } | { ok: false; status: 401 | 429 | 503; message: string; retryAfter?: number };

export class GranteeBasicAuth {
  private readonly key = randomBytes(32);
  private readonly cache = new Map<string, { mac: Buffer; asked: string; grantee: Grantee; expires: number }>();
  private readonly throttle: LoginThrottle;

  constructor(
    private readonly opts: { directory: MemberDirectory; audit: Pick<AuditLog, 'append'>; clock: Clock; logger: Pick<FastifyBaseLogger, 'error' | 'warn'> },
  ) {
    this.throttle = new LoginThrottle(opts.clock);
  }

  private mac(user: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(user).update('\u0000').update(password).digest();
  }

  /** Checks `Authorization: Basic ...` from `address`, asking the directory about `groups`. */
  async verify(authorization: string | undefined, address: string, groups: readonly string[]): Promise<GranteeResult> {
    const creds = parseBasic(authorization);
    if (!creds) return { ok: false, status: 401, message: 'authentication required: log in with your directory account' };
    const now = this.opts.clock();
    const mac = this.mac(creds.user, creds.password);
    const asked = JSON.stringify([...groups].sort());
    const hit = this.cache.get(creds.user);
    if (hit && hit.expires > now && hit.asked === asked && timingSafeEqual(hit.mac, mac)) return { ok: true, grantee: hit.grantee };
    this.cache.delete(creds.user);
    let result;
    try {
      result = await this.throttle.attempt(creds.user, address, async () =>
        creds.login.length > MAX_LOGIN_CHARS ? { ok: false as const, reason: 'wrong user name or password' } : this.opts.directory.authenticateMember(creds.login, creds.password, groups),
      );
    } catch (err) {
      if (err instanceof TooManyLoginAttempts) return { ok: false, status: 429, message: err.message, retryAfter: THROTTLED_RETRY_SECONDS };
      this.opts.logger.error({ err: { code: (err as { code?: unknown }).code, message: (err as Error).message } }, 'shared: the directory failed');
      return { ok: false, status: 503, message: 'the directory does not answer; try again in a minute' };
    }
    if (!result.ok) {
      await this.record(creds.user, address, 'deny', result.reason);
      return { ok: false, status: 401, message: result.reason };
    }
    const grantee: Grantee = { name: result.user, groups: result.groups };
    await this.record(grantee.name, address, 'allow', `groups: ${[...grantee.groups].length}`);
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(creds.user, { mac, asked, grantee, expires: now + CACHE_TTL_MS });
    return { ok: true, grantee };
  }

  private async record(actor: string, address: string, decision: 'allow' | 'deny', reason: string): Promise<void> {
    await this.opts.audit.append({ actor: actor.slice(0, MAX_LOGIN_CHARS), action: 'share.login', target: address, decision, reason }).catch((err: Error) => {
      this.opts.logger.error({ err: err.message }, 'shared: the audit line could not be written');
    });
  }
}
