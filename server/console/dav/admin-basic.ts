/**
 * HTTP Basic authentication of administrators for the console's WebDAV
 * (/pcs): the same login as the web page (AdminAuthenticator: a directory
 * bind, roles from groups, hold-back of wrong guesses, each checked login
 * in the console's trail), with a short memory of verified logins so that
 * a WebDAV client, which sends its password with every request (Windows
 * Explorer sends dozens per folder), does not cost a directory bind and an
 * audit line each time.
 *
 * Security considerations:
 * - The memory holds, per account, an HMAC-SHA-256 of name and password
 *   under a per-process random key (never the password), the roles, and an
 *   expiry of CACHE_TTL_MS (60 s): a password changed or an administrator
 *   removed from a role's group takes effect within a minute. It is
 *   compared in constant time. Only successful logins are remembered;
 *   every wrong one goes to AdminAuthenticator (and its hold-back).
 * - At most MAX_CACHED accounts are remembered (the oldest is forgotten).
 * - The Authorization header is never logged.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../../shares/clock.js';
import { parseBasic } from '../../http/basic-auth.js';
import type { Admin, AdminAuthenticator, LoginResult } from '../admins.js';

/** How long a verified login is remembered. */
export const CACHE_TTL_MS = 60_000;
const MAX_CACHED = 1000;

export const DAV_REALM = 'Basic realm="mydoc console", charset="UTF-8"';

export type BasicResult = { ok: true; admin: Admin } | { ok: false; status: 401 | 429 | 503; message: string; retryAfter?: number };

export class AdminBasicAuth {
  private readonly key = randomBytes(32);
  private readonly cache = new Map<string, { mac: Buffer; admin: Admin; expires: number }>();

  constructor(
    private readonly admins: Pick<AdminAuthenticator, 'login'>,
    private readonly clock: Clock,
  ) {}

  private mac(user: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(user).update('\u0000').update(password).digest();
  }

  /** Checks `Authorization: Basic ...` from the client `address`. */
  async verify(authorization: string | undefined, address: string): Promise<BasicResult> {
    const creds = parseBasic(authorization);
    if (!creds) return { ok: false, status: 401, message: 'authentication required: log in with your administrator account' };
    const now = this.clock();
    const mac = this.mac(creds.user, creds.password);
    const hit = this.cache.get(creds.user);
    if (hit && hit.expires > now && timingSafeEqual(hit.mac, mac)) return { ok: true, admin: hit.admin };
    const result: LoginResult = await this.admins.login(creds.login, creds.password, address);
    if (!result.ok) {
      this.cache.delete(creds.user);
      return result;
    }
    this.cache.delete(creds.user);
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(creds.user, { mac, admin: result.admin, expires: now + CACHE_TTL_MS });
    return { ok: true, admin: result.admin };
  }
}
