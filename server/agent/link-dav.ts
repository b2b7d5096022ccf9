/**
 * The agent's side of the console's WebDAV: one streamed request on the
 * link (`<METHOD> /link/dav<console path>`, header mydoc-grant) served from
 * the owner's vault, if and only as far as its grant allows (console.md,
 * Rights and privacy; docs in server/link/protocol.ts).
 *
 * Checks, in order, each refusal a JSON {"error":{"code","message"}} with
 * the status of LINK_DAV_STATUS (error-status.ts):
 *   - the grant verifies with the pinned console key, for this PC, on this
 *     agent's clock (policy/grants/grant.ts); its id was not used before
 *     (kept until its expiry: one grant, one request);
 *   - the method is the grant's; the path, decoded once (paths.ts), starts
 *     with the grant's base names (an admin grant's base is exactly
 *     /pcs/<this PC>/<its user>); the vault path root + rest stays inside
 *     the grant's prefix (names compared as the vault does);
 *   - the access covers the method: list = OPTIONS, PROPFIND, HEAD; read
 *     also GET; readwrite (shares only, never an administrator) anything;
 *     a share grant stands on a rule of the verified set (rule-set.ts);
 *   - the gate is online (slot N needs the directory) and the user has a
 *     vault on this PC.
 * Then the owner's session serves it: VaultDavStore -> subtree(root) ->
 * read-only unless readwrite -> contents refused for list, with the
 * owner's lock table and hrefs under the grant's base. A session opened
 * for the link closes again after LINK_SESSION_IDLE_MS without link use,
 * unless the user has used it too.
 *
 * Audit: one line per request in the agent's log, naming the console's
 * administrator or the share's grantee (never as the user), the owner,
 * the method, status, request id, role or rule, and only a SHA-256 of the
 * path (a removed disk leaks no file name); the owner's notices (in their
 * encrypted vault) get the path, for every request that reached the vault
 * once its grant verified, served or refused.
 *
 * Security considerations: nothing is opened before the grant verifies;
 * no path, name or token is logged; the answer streams onto the link with
 * backpressure (stream.pipeline), and a reset stream stops the read.
 */
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { pipeline } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../policy/audit/log.js';
import { GrantError, type GrantErrorCode } from '../../policy/grants/errors.js';
import { verifyGrant, type Grant } from '../../policy/grants/grant.js';
import type { VerifiedShareRules } from '../../policy/grants/rule-set.js';
import type { Gate } from '../../policy/gate.js';
import type { Sessions, UserSession } from '../../policy/sessions.js';
import type { Clock } from '../../shares/clock.js';
import { foldName, normalizeName } from '../../shares/names.js';
import { VaultDavStore } from '../../shares/vault/dav-store.js';
import { canonicalUser, KEYRING_FILE, userDir } from '../../shares/vault/user-vaults.js';
import { DavError } from '../../shares/webdav/errors.js';
import { DavHandler, type DavLimits } from '../../shares/webdav/handler.js';
import { decodePath, encodeHref } from '../../shares/webdav/paths.js';
import { readOnlyStore } from '../../shares/webdav/read-only-store.js';
import type { DavResponse } from '../../shares/webdav/responses.js';
import { contentsRefusedStore, subtreeStore } from '../../shares/webdav/subtree-store.js';
import { GRANT_HEADER, LINK_PATHS } from '../link/protocol.js';
import type { ConsoleKeyPin } from './console-key.js';
import { LINK_DAV_STATUS, type LinkDavErrorCode } from './error-status.js';
import type { SessionLocks } from './session-locks.js';

/** A session the link opened closes after this long without a link request (unless the user uses it too). */
export const LINK_SESSION_IDLE_MS = 60_000;

const LIST_METHODS = new Set(['OPTIONS', 'PROPFIND', 'HEAD']);
const READ_METHODS = new Set([...LIST_METHODS, 'GET']);
/** Answer headers HTTP/2 does not carry. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

export interface LinkDavDeps {
  pcId: string;
  dataDir: string;
  consoleKey: Pick<ConsoleKeyPin, 'current'>;
  rules: Pick<VerifiedShareRules, 'match'>;
  sessions: Pick<Sessions, 'getForLink' | 'lockIfLinkOnly'>;
  locks: Pick<SessionLocks, 'of'>;
  gate: Pick<Gate, 'state'>;
  audit: Pick<AuditLog, 'append'>;
  limits: DavLimits;
  clock: Clock;
  logger: Pick<FastifyBaseLogger, 'warn' | 'error' | 'debug'>;
  idleMs?: number;
}

class LinkDavRefusal extends Error {
  constructor(
    readonly code: GrantErrorCode | LinkDavErrorCode | 'ERR_DAV_PATH_INVALID',
    message: string,
  ) {
    super(message);
  }
}

const pathHash = (path: string): string => `sha256:${createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 16)}`;
const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((n, i) => foldName(normalizeName(n)) === foldName(normalizeName(b[i]!)));
const startsWith = (names: readonly string[], prefix: readonly string[]): boolean => names.length >= prefix.length && sameNames(names.slice(0, prefix.length), prefix);

export class LinkDav {
  /** Grant ids seen, with their expiry (ms): a second use is a replay. */
  private readonly seen = new Map<string, number>();
  /** Users whose session the link opened, with its idle timer. */
  private readonly idle = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: LinkDavDeps) {}

  /** Serves one /link/dav stream; never throws (a failure is a 500 answer). */
  async serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const method = String(headers[':method'] ?? '');
    const rawPath = String(headers[':path'] ?? '').slice(LINK_PATHS.dav.length);
    let grant: Grant;
    try {
      grant = await this.verify(headers[GRANT_HEADER]);
    } catch (err) {
      const refusal = asRefusal(err) ?? new LinkDavRefusal('ERR_GRANT_MALFORMED', 'the grant cannot be read');
      await this.deps.audit.append({ actor: 'console (grant not verified)', action: 'link.dav', decision: 'deny', reason: `${method} ${statusOfRefusal(refusal)} ${refusal.code} path ${pathHash(rawPath)}` });
      return refuse(stream, refusal);
    }
    let decided: { names: string[]; vaultPath: string[]; rest: string[]; dir: boolean } | undefined;
    let session: UserSession | undefined;
    try {
      decided = this.decide(grant, method, rawPath);
      session = await this.open(grant.user);
      const res = await this.handle(grant, session, method, decided, headers, stream);
      await this.record(grant, session, method, res.status, decided?.names ?? [], decided?.vaultPath, 'allow');
      return respond(stream, method, res, this.deps.logger);
    } catch (err) {
      const refusal = asRefusal(err);
      if (!refusal) {
        this.deps.logger.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'link dav: a request failed');
        stream.on('error', () => undefined);
        if (!stream.headersSent) json(stream, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
        return;
      }
      session ??= await this.openQuietly(grant.user);
      await this.record(grant, session, method, statusOfRefusal(refusal), decided?.names ?? safeNames(rawPath), decided?.vaultPath, 'deny', refusal.code);
      return refuse(stream, refusal);
    }
  }

  private async verify(token: unknown): Promise<Grant> {
    const key = this.deps.consoleKey.current();
    if (!key) throw new GrantError('ERR_GRANT_NO_CONSOLE_KEY', 'this PC has not pinned a console key yet');
    const grant = await verifyGrant(token, { key, pcId: this.deps.pcId, now: new Date(this.deps.clock()) });
    const now = this.deps.clock();
    for (const [id, exp] of this.seen) if (exp <= now) this.seen.delete(id);
    if (this.seen.has(grant.id)) throw new GrantError('ERR_GRANT_REPLAYED', 'this grant was used before (one grant, one request)');
    this.seen.set(grant.id, grant.expires * 1000);
    return grant;
  }

  /** The request against its grant: where it goes in the vault; throws a GrantError or a path DavError. */
  private decide(grant: Grant, method: string, rawPath: string): { names: string[]; vaultPath: string[]; rest: string[]; dir: boolean } {
    if (method !== grant.method) throw new GrantError('ERR_GRANT_SCOPE', `the grant is for ${grant.method}, not ${method}`);
    const names = decodePath(rawPath);
    const base = decodePath(grant.base);
    if (grant.kind === 'admin') {
      if (base.length !== 3 || base[0] !== 'pcs') throw new GrantError('ERR_GRANT_SCOPE', 'an administrator\'s grant is for /pcs/<PC>/<user>');
      if (base[1] !== this.deps.pcId) throw new GrantError('ERR_GRANT_OTHER_PC', 'the grant is for another PC\'s path');
      if (canonicalUser(base[2]!) !== canonicalUser(grant.user)) throw new GrantError('ERR_GRANT_OTHER_USER', 'the grant\'s path names another user');
      if (names.length >= 2 && names[1] !== this.deps.pcId) throw new GrantError('ERR_GRANT_OTHER_PC', 'the request is for another PC');
      if (names.length >= 3 && canonicalUser(names[2]!) !== canonicalUser(grant.user)) throw new GrantError('ERR_GRANT_OTHER_USER', 'the request names another user than the grant');
    } else {
      this.deps.rules.match(grant);
    }
    if (!startsWith(names, base)) throw new GrantError('ERR_GRANT_SCOPE', 'the request is outside the grant\'s path');
    const rest = names.slice(base.length);
    const vaultPath = [...grant.root, ...rest];
    if (!startsWith(vaultPath, grant.prefix)) throw new GrantError('ERR_GRANT_SCOPE', 'the request is outside the grant\'s folder');
    const allowed = grant.access === 'readwrite' ? true : grant.access === 'read' ? READ_METHODS.has(method) : LIST_METHODS.has(method);
    if (!allowed) {
      throw new GrantError('ERR_GRANT_ACCESS', grant.kind === 'admin' && !READ_METHODS.has(method) ? 'administrators read; they do not write into users\' areas' : `the grant gives ${grant.access} access, not ${method}`);
    }
    if (this.deps.gate.state() !== 'online') throw new LinkDavRefusal('ERR_LINK_DAV_OFFLINE', `PC ${this.deps.pcId} cannot reach its company directory, so no vault can be opened now`);
    const pathOnly = rawPath.replace(/[?#].*$/s, '');
    return { names, vaultPath, rest, dir: pathOnly.endsWith('/') };
  }

  private async open(user: string): Promise<UserSession> {
    try {
      await access(join(userDir(this.deps.dataDir, this.deps.pcId, user), KEYRING_FILE));
    } catch {
      throw new LinkDavRefusal('ERR_LINK_DAV_NO_USER', `user ${user} has no documents on PC ${this.deps.pcId}`);
    }
    const session = await this.deps.sessions.getForLink(user);
    this.touch(user);
    return session;
  }

  /** The owner's session for a refusal's notice, if it can be had (online, enrolled); never throws. */
  private async openQuietly(user: string): Promise<UserSession | undefined> {
    if (this.deps.gate.state() !== 'online') return undefined;
    return this.open(user).catch(() => undefined);
  }

  /** (Re)arms the idle close of a session the link uses. */
  private touch(user: string): void {
    const key = canonicalUser(user);
    clearTimeout(this.idle.get(key));
    const timer = setTimeout(() => {
      this.idle.delete(key);
      void this.deps.sessions.lockIfLinkOnly(key).catch((err: { code?: string }) => this.deps.logger.warn({ code: err.code }, 'link dav: closing an idle session failed'));
    }, this.deps.idleMs ?? LINK_SESSION_IDLE_MS);
    timer.unref();
    this.idle.set(key, timer);
  }

  private async handle(grant: Grant, session: UserSession, method: string, d: { rest: string[]; dir: boolean }, headers: IncomingHttpHeaders, body: ServerHttp2Stream): Promise<DavResponse> {
    let store = subtreeStore(new VaultDavStore(session.vault), grant.root);
    if (grant.access !== 'readwrite') store = readOnlyStore(store);
    if (grant.access === 'list') store = contentsRefusedStore(store);
    const handler = new DavHandler(store, this.deps.locks.of(session), this.deps.limits, this.deps.clock, grant.base.replace(/\/+$/, ''));
    const davHeaders: IncomingHttpHeaders = { ...headers };
    for (const name of Object.keys(davHeaders)) if (name.startsWith(':') || name === GRANT_HEADER) delete davHeaders[name];
    if (typeof headers[':authority'] === 'string') davHeaders.host = headers[':authority'];
    const url = encodeHref(d.rest, d.dir);
    return handler.handle({ method, url, headers: davHeaders, body, principal: `${grant.actor} (${grant.kind === 'admin' ? 'console administrator' : 'share grantee'})` });
  }

  /** The agent's audit line (a hash of the path only) and the owner's notice (the path). */
  private async record(grant: Grant, session: UserSession | undefined, method: string, status: number, names: readonly string[], vaultPath: readonly string[] | undefined, decision: 'allow' | 'deny', code?: string): Promise<void> {
    const admin = grant.kind === 'admin';
    const via = admin ? `role ${grant.role}` : `rule ${grant.ruleId ?? ''}`;
    await this.deps.audit.append({
      actor: `${grant.actor} (${admin ? 'console administrator' : 'share grantee'})`,
      action: admin ? 'admin.access' : 'share.access',
      target: grant.user,
      decision,
      reason: `${method} ${status} request ${grant.id} ${via}${code ? ` ${code}` : ''} path ${pathHash('/' + names.join('/'))}`,
    });
    if (!session) return;
    try {
      session.vault.addNotice({
        time: this.deps.clock(),
        actor: grant.actor,
        kind: grant.kind,
        via: admin ? grant.role : `share rule ${grant.ruleId ?? ''}`,
        method,
        path: '/' + (vaultPath ?? [...grant.root, ...names.slice(decodePathSafe(grant.base).length)]).join('/'),
        requestId: grant.id,
        decision,
      });
    } catch (err) {
      this.deps.logger.error({ code: (err as { code?: string }).code }, 'link dav: the access notice could not be written');
    }
  }
}

function decodePathSafe(path: string): string[] {
  try {
    return decodePath(path);
  } catch {
    return [];
  }
}

/** The names of a path that may not decode (for a refusal's audit line). */
function safeNames(rawPath: string): string[] {
  const names = decodePathSafe(rawPath);
  return names.length > 0 ? names : [rawPath];
}

/** The refusal an error stands for; undefined for an unexpected failure. */
function asRefusal(err: unknown): LinkDavRefusal | undefined {
  if (err instanceof LinkDavRefusal) return err;
  if (err instanceof GrantError) return new LinkDavRefusal(err.code, err.message);
  if (err instanceof DavError && err.code === 'ERR_DAV_PATH_INVALID') return new LinkDavRefusal('ERR_DAV_PATH_INVALID', err.message);
  return undefined;
}

const statusOfRefusal = (r: LinkDavRefusal): number => (r.code === 'ERR_DAV_PATH_INVALID' ? 400 : LINK_DAV_STATUS[r.code]);

function json(stream: ServerHttp2Stream, status: number, body: unknown): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify(body));
}

function refuse(stream: ServerHttp2Stream, refusal: LinkDavRefusal): void {
  const status = statusOfRefusal(refusal);
  // A request body not read (a refused PUT) is not wanted.
  stream.on('error', () => undefined);
  json(stream, status, { error: { code: refusal.code, message: refusal.message } });
}

/** The WebDAV answer onto the stream: headers, then the body with backpressure. */
function respond(stream: ServerHttp2Stream, method: string, res: DavResponse, logger: LinkDavDeps['logger']): void {
  if (stream.closed || stream.destroyed) {
    if (res.body && typeof res.body === 'object' && 'destroy' in res.body) res.body.destroy();
    return;
  }
  const headers: OutgoingHttpHeaders = { ':status': res.status };
  for (const [name, value] of Object.entries(res.headers)) if (!HOP_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
  if (res.status >= 500) logger.error({ method, status: res.status, cause: res.cause }, 'link dav: WebDAV request failed');
  const body = res.body;
  if (body === undefined || method === 'HEAD' || res.status === 204 || res.status === 304) {
    if (body && typeof body === 'object' && 'destroy' in body) body.destroy();
    stream.respond(headers, { endStream: true });
    return;
  }
  stream.respond(headers);
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    stream.end(body);
    return;
  }
  pipeline(body, stream, (err) => {
    if (err) logger.debug({ code: (err as { code?: string }).code }, 'link dav: the answer stream ended early');
  });
}
