/**
 * WebDAV class 1 and 2 over a store (store.ts; in the agent, one user's
 * vault): method dispatch. Every handleX returns a DavResponse; errors are
 * thrown as DavError (or store errors, mapped in errors.ts) and written in
 * one place by the caller.
 *
 * Security considerations: every path is decoded once (paths.ts) and goes
 * only to this handler's store (one user's vault); XML bodies are parsed with no DTD and a size cap
 * (xml.ts); a PUT beyond the size limit is refused before a byte is stored;
 * a modifying method must pass its `If` header and the lock check; a name a
 * request creates must be one Windows can use (names.ts checkNewName); dead
 * properties are capped per property and per resource (props.ts) and a
 * multistatus is streamed, never built as one string (multistatus.ts).
 *
 * Href base: served below another server's path (the console's /pcs or
 * /shared, through the link), every href it answers starts with `hrefBase`
 * (encoded, no trailing "/"), and a Destination (or an If header's
 * resource) must name a path under it; one outside is another server's
 * (502), never a path of this store.
 */
import { systemClock, type Clock } from '../clock.js';
import { checkNewName, foldName, joinPath, normalizeName } from '../names.js';
import { DavError, toDavError } from './errors.js';
import { evaluateIf, parseIfHeader, submittedTokens } from './if-header.js';
import { LockNotFoundError, type Lock, type LockManager } from './locks.js';
import { decodeDestination, decodePath, encodeHref } from './paths.js';
import { multistatus } from './multistatus.js';
import { evaluatePreconditions } from './preconditions.js';
import { DAV, MULTISTATUS_CLOSE, MULTISTATUS_OPEN, allprop, emptyProp, etagOf, httpDate, namedProps, propNames, propstat, type PropContext } from './props.js';
import { planPropPatch } from './proppatch.js';
import { parseRange } from './range.js';
import { parseLockInfo, parsePropfind } from './request-bodies.js';
import { header, parseDepth, parseLockToken, parseOverwrite, parseTimeout, readBody, type DavRequest } from './request.js';
import { errorResponse, listingResponse, lockResponse, propPatchResponse, rangeNotSatisfiableResponse, type DavResponse } from './responses.js';
import { hasDeadProps, hasQuota, hasWin32Meta, type DavEntry, type DavPath, type DavStore, type DeadProperty } from './store.js';
import { escapeXml, parseXml } from './xml.js';

export interface DavLimits {
  /** Largest file a PUT accepts (the Windows client cannot go beyond 4 GiB - 1). */
  maxFileBytes: number;
  /** Largest XML request body. */
  maxXmlBytes: number;
  /** Space reported as available (quota-available-bytes). */
  quotaBytes: () => number;
}

export const DAV_METHODS = ['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK'] as const;
export const ALLOW = DAV_METHODS.join(', ');

const keyOf = (names: DavPath): string[] => names.map((n) => foldName(normalizeName(n)));

/** The code of an error's innermost cause (ENOSPC, SQLITE_FULL, ...): safe to log, unlike its message. */
function causeCode(err: unknown): string | undefined {
  let code: string | undefined;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') code = e.code;
  }
  return code;
}

/**
 * What a PUT's Content-Length alone decides, before any of the body is read:
 * 413 beyond what the Windows client can handle, 507 beyond the free space.
 */
export function putSizeRefusal(contentLength: string | undefined, limits: Pick<DavLimits, 'maxFileBytes' | 'quotaBytes'>): DavError | undefined {
  if (contentLength === undefined) return undefined;
  const length = /^\d+$/.test(contentLength.trim()) ? Number(contentLength) : Infinity;
  if (length > limits.maxFileBytes) return new DavError('ERR_DAV_FILE_TOO_LARGE', `the file is larger than ${limits.maxFileBytes} bytes, the most the Windows WebDAV client can handle (4 GiB)`);
  const free = limits.quotaBytes();
  if (length > free) return new DavError('ERR_DAV_INSUFFICIENT_SPACE', `there is not enough free space on this PC's data disk for this file (${length} bytes; ${free} free)`);
  return undefined;
}

export class DavHandler {
  constructor(
    private readonly store: DavStore,
    private readonly locks: LockManager,
    private readonly limits: DavLimits,
    private readonly now: Clock = systemClock,
    /** The encoded path this store's root has for the client ('' at the origin's root). */
    private readonly hrefBase = '',
  ) {}

  private href(names: DavPath, isDir: boolean): string {
    return this.hrefBase + encodeHref(names, isDir);
  }

  /** The store path a Destination (or an If resource) names: below the href base, which is cut off. */
  private destination(value: string | undefined, host: string | undefined): string[] {
    const names = decodeDestination(value, host);
    if (this.hrefBase === '') return names;
    const base = decodePath(this.hrefBase);
    if (names.length < base.length || base.some((n, i) => n !== names[i])) throw new DavError('ERR_DAV_DESTINATION_OTHER_SERVER', 'the Destination is outside this share');
    return names.slice(base.length);
  }

  /** Handles one request; never throws. */
  async handle(req: DavRequest): Promise<DavResponse> {
    try {
      return await this.dispatch(req);
    } catch (err) {
      const res = errorResponse(toDavError(err));
      const cause = causeCode(err);
      return res.status >= 500 && cause ? { ...res, cause } : res;
    }
  }

  private async dispatch(req: DavRequest): Promise<DavResponse> {
    const names = decodePath(req.url);
    switch (req.method) {
      case 'OPTIONS':
        return optionsResponse();
      case 'GET':
      case 'HEAD':
        return this.get(req, names);
      case 'PUT':
        return this.put(req, names);
      case 'DELETE':
        return this.delete(req, names);
      case 'MKCOL':
        return this.mkcol(req, names);
      case 'COPY':
      case 'MOVE':
        return this.copyMove(req, names);
      case 'PROPFIND':
        return this.propfind(req, names);
      case 'PROPPATCH':
        return this.proppatch(req, names);
      case 'LOCK':
        return this.lock(req, names);
      case 'UNLOCK':
        return this.unlock(req, names);
      default:
        throw new DavError('ERR_DAV_METHOD_NOT_ALLOWED', `method ${req.method} is not supported`);
    }
  }

  // ---- conditions ------------------------------------------------------------

  /** Evaluates the If header (412 when it fails) and returns the lock tokens it submits. */
  private checkIf(req: DavRequest, names: DavPath): string[] {
    const raw = header(req, 'if');
    if (raw === undefined) return [];
    const lists = parseIfHeader(raw);
    const resolve = (resource: string | undefined) => {
      let target: string[];
      try {
        target = resource === undefined ? [...names] : this.destination(resource, header(req, 'host'));
      } catch {
        return undefined;
      }
      const entry = this.store.stat(target);
      return { etag: entry && !entry.isDir ? etagOf(entry) : undefined, lockTokens: this.locks.locksCovering(keyOf(target)).map((l) => l.token) };
    };
    if (!evaluateIf(lists, resolve)) throw new DavError('ERR_DAV_IF_FAILED', 'the If header conditions do not match the resource');
    return submittedTokens(lists);
  }

  /** 423 unless the submitted tokens cover every lock on the path (and below it, for trees). */
  private checkLocks(names: DavPath, tokens: string[], includeDescendants = false): void {
    this.locks.checkWrite(keyOf(names), tokens, { includeDescendants });
  }

  // ---- GET / HEAD ------------------------------------------------------------

  private async get(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const entry = this.require(names);
    if (entry.isDir) return listingResponse(this.store.list(names), req.method === 'HEAD');
    const etag = etagOf(entry);
    const lastModified = httpDate(entry.modified);
    const base: Record<string, string | number> = { etag, 'last-modified': lastModified, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    const conditional = evaluatePreconditions(req, etag, entry.modified);
    if (conditional === 304) return { status: 304, headers: { etag, 'last-modified': lastModified } };
    if (conditional === 412) throw new DavError('ERR_DAV_PRECONDITION_FAILED', 'the precondition headers do not match the resource');

    let range = parseRange(header(req, 'range'), entry.size);
    const ifRange = header(req, 'if-range');
    if (range && ifRange !== undefined && ifRange !== etag && ifRange !== lastModified) range = undefined;
    if (range === 'unsatisfiable') return rangeNotSatisfiableResponse(entry.size);
    const status = range ? 206 : 200;
    const start = range ? range.start : 0;
    const end = range ? range.end : entry.size; // exclusive
    const headers: Record<string, string | number> = { ...base, 'content-length': end - start };
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${entry.size}`;
    if (req.method === 'HEAD') return { status, headers };
    return { status, headers, body: await this.store.read(names, { start, end }) };
  }

  // ---- PUT -------------------------------------------------------------------

  private async put(req: DavRequest, names: DavPath): Promise<DavResponse> {
    if (names.length === 0) throw new DavError('ERR_IS_A_DIRECTORY', 'cannot PUT the root');
    const refusal = putSizeRefusal(header(req, 'content-length'), this.limits);
    if (refusal) {
      req.body?.resume();
      throw refusal;
    }
    if (header(req, 'content-range') !== undefined) throw new DavError('ERR_DAV_PARTIAL_PUT', 'partial PUT (Content-Range) is not supported');
    const existing = this.store.stat(names);
    if (existing?.isDir) throw new DavError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    if (!existing) checkNewName(names[names.length - 1]!);
    const tokens = this.checkIf(req, names);
    this.checkLocks(names, tokens);
    if (existing && evaluatePreconditions(req, etagOf(existing), existing.modified) !== 200) throw new DavError('ERR_DAV_PRECONDITION_FAILED', 'the precondition headers do not match the file');
    if (!existing && header(req, 'if-match') !== undefined) throw new DavError('ERR_DAV_PRECONDITION_FAILED', 'If-Match: the file does not exist');
    // A body announced as empty is passed as such: the store need not read it to know (an empty file is cheaper to store).
    const empty = req.body === undefined || header(req, 'content-length')?.trim() === '0';
    if (empty) req.body?.resume();
    const body = empty ? [] : req.body!;
    const result = await this.store.write(names, body, { maxBytes: this.limits.maxFileBytes });
    return { status: result.created ? 201 : 204, headers: { etag: etagOf(result.entry) } };
  }

  // ---- DELETE / MKCOL ----------------------------------------------------------

  private async delete(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const entry = this.require(names);
    const tokens = this.checkIf(req, names);
    this.checkLocks(names, tokens, entry.isDir);
    await this.store.delete(names);
    this.locks.removed(keyOf(names));
    return { status: 204, headers: {} };
  }

  private async mkcol(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const body = await readBody(req.body, this.limits.maxXmlBytes);
    if (body.length > 0) throw new DavError('ERR_DAV_MKCOL_BODY', 'MKCOL with a body is not supported');
    if (names.length === 0 || this.store.stat(names)) throw new DavError('ERR_EXISTS', `${joinPath(names)} already exists`);
    checkNewName(names[names.length - 1]!);
    const tokens = this.checkIf(req, names);
    this.checkLocks(names, tokens);
    await this.store.mkdir(names);
    return { status: 201, headers: {} };
  }

  // ---- COPY / MOVE ---------------------------------------------------------------

  private async copyMove(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const isMove = req.method === 'MOVE';
    const source = this.require(names);
    const dest = this.destination(header(req, 'destination'), header(req, 'host'));
    const overwrite = parseOverwrite(req);
    const depth = source.isDir ? parseDepth(req, isMove ? ['infinity'] : ['0', 'infinity'], 'infinity') : 'infinity';
    if (dest.length === 0) throw new DavError('ERR_DAV_DESTINATION_ROOT', 'the destination is the root');
    checkNewName(dest[dest.length - 1]!);
    const sameResource = keyOf(dest).join('/') === keyOf(names).join('/');
    if (sameResource && !(isMove && joinPath(dest) !== joinPath(names))) throw new DavError('ERR_DAV_SAME_RESOURCE', 'the source and the destination are the same');
    // Untagged If lists apply to the source; the destination needs only the lock tokens.
    const tokens = this.checkIf(req, names);
    if (isMove) this.checkLocks(names, tokens, source.isDir);
    const destEntry = this.store.stat(dest);
    if (destEntry && !sameResource) {
      if (!overwrite) throw new DavError('ERR_DAV_DESTINATION_EXISTS', `${joinPath(dest)} exists and Overwrite is F`);
      this.checkLocks(dest, tokens, destEntry.isDir);
    } else if (!destEntry) {
      this.checkLocks(dest, tokens);
    }
    let replaced: boolean;
    if (isMove) {
      ({ replaced } = await this.store.move(names, dest, { overwrite }));
      this.locks.moved(keyOf(names), keyOf(dest));
    } else if (source.isDir && depth === '0') {
      replaced = destEntry !== undefined;
      if (destEntry) {
        await this.store.delete(dest);
        this.locks.removed(keyOf(dest));
      }
      await this.store.mkdir(dest, { created: source.created, modified: source.modified, accessed: source.accessed });
      if (hasDeadProps(this.store)) await this.store.patchProps(dest, this.store.getProps(names));
    } else {
      ({ replaced } = await this.store.copy(names, dest, { overwrite }));
      if (replaced) this.locks.removed(keyOf(dest));
    }
    return { status: replaced ? 204 : 201, headers: {} };
  }

  // ---- PROPFIND ----------------------------------------------------------------

  private async propfind(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const raw = header(req, 'depth');
    if (raw !== undefined && raw.trim().toLowerCase() === 'infinity') throw new DavError('ERR_DAV_PROPFIND_INFINITE', 'PROPFIND with Depth infinity is not supported', 'propfind-finite-depth');
    const depth = parseDepth(req, ['0', '1'], '1');
    const asked = parsePropfind(parseXml(await readBody(req.body, this.limits.maxXmlBytes), { maxBytes: this.limits.maxXmlBytes }));
    const self = this.require(names);
    const now = this.now();
    const store = this.store;
    const quota = hasQuota(store) ? () => ({ used: store.quotaUsed(), available: Math.max(0, this.limits.quotaBytes()) }) : undefined;
    const deadProps = hasDeadProps(store) ? store : undefined;
    const anyLocks = this.locks.list().length > 0;
    const context = (entry: DavEntry, entryNames: DavPath, dead: () => readonly DeadProperty[]): PropContext => ({
      entry,
      now,
      quota,
      locks: () => (anyLocks ? this.locks.locksCovering(keyOf(entryNames)) : []),
      dead,
    });
    /** One D:response as one piece (a resource's dead properties are bounded at PROPPATCH, 1 MiB in all). */
    const render = (entry: DavEntry, entryNames: DavPath, escapedHref: string, full: boolean, dead: () => readonly DeadProperty[]): string => {
      const c = context(entry, entryNames, dead);
      const props = asked.mode === 'allprop' ? propstat(allprop(c, full), 200) : asked.mode === 'propname' ? propstat(propNames(c).map(emptyProp), 200) : namedProps(asked.requested, c);
      return `<D:response><D:href>${escapedHref}</D:href>${props.join('')}</D:response>`;
    };
    const selfHref = this.href(names, self.isDir);
    const pieces = function* (): Generator<string> {
      yield MULTISTATUS_OPEN;
      yield render(self, names, escapeXml(selfHref), true, () => deadProps?.getProps(names) ?? []);
      if (depth === '1' && self.isDir) {
        // A member's href is the folder's (encoded and escaped once) and its own name, encoded as encodeHref does.
        const folderHref = escapeXml(selfHref.endsWith('/') ? selfHref : `${selfHref}/`);
        const props = deadProps?.childProps(names) ?? new Map<string, DeadProperty[]>();
        const none: readonly DeadProperty[] = [];
        for (const e of store.list(names)) {
          const memberHref = folderHref + escapeXml(encodeURIComponent(e.name)) + (e.isDir ? '/' : '');
          yield render(e, [...names, e.name], memberHref, false, () => props.get(e.name) ?? none);
        }
      }
      yield MULTISTATUS_CLOSE;
    };
    return multistatus(pieces());
  }

  // ---- PROPPATCH -----------------------------------------------------------------

  private async proppatch(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const doc = parseXml(await readBody(req.body, this.limits.maxXmlBytes), { maxBytes: this.limits.maxXmlBytes });
    if (!doc || doc.ns !== DAV || doc.local !== 'propertyupdate') throw new DavError('ERR_DAV_BODY_INVALID', 'the body must be a DAV:propertyupdate element');
    const entry = this.require(names);
    const tokens = this.checkIf(req, names);
    this.checkLocks(names, tokens);

    const store = this.store;
    const win32 = hasWin32Meta(store) ? store : undefined;
    const dead = hasDeadProps(store) ? store : undefined;
    const plan = planPropPatch(doc, { win32: win32 !== undefined, deadProps: dead && (() => dead.getProps(names)) });
    if (!plan.failed) {
      if (win32 && Object.keys(plan.meta).length > 0) await win32.setMeta(names, plan.meta);
      if (dead && (plan.sets.length > 0 || plan.removes.length > 0)) await dead.patchProps(names, plan.sets, plan.removes);
    }
    return propPatchResponse(this.href(names, entry.isDir), plan.results, plan.why);
  }

  // ---- LOCK / UNLOCK ---------------------------------------------------------------

  private async lock(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const timeout = parseTimeout(req);
    const doc = parseXml(await readBody(req.body, this.limits.maxXmlBytes), { maxBytes: this.limits.maxXmlBytes });
    if (!doc) return this.refreshLock(req, names, timeout);
    const { scope, ownerXml } = parseLockInfo(doc);
    const depth = parseDepth(req, ['0', 'infinity'], 'infinity');
    if (names.length === 0) throw new DavError('ERR_DAV_LOCK_ROOT', 'the root cannot be locked');
    const existing = this.store.stat(names);
    if (!existing) checkNewName(names[names.length - 1]!);
    const tokens = this.checkIf(req, names);
    const lock = this.locks.lock({
      path: keyOf(names),
      rootHref: this.href(names, existing?.isDir ?? false),
      scope,
      depth: depth === '0' ? 0 : 'infinity',
      ownerXml,
      timeoutSeconds: timeout,
      principal: req.principal,
    });
    let created = false;
    if (!existing) {
      try {
        this.checkLocks(names, [...tokens, lock.token]);
        await this.store.write(names, [], { createOnly: true });
        created = true;
      } catch (err) {
        this.locks.unlock(lock.token, keyOf(names));
        throw err;
      }
    }
    return lockResponse(lock, this.now(), created ? 201 : 200, { 'lock-token': `<${lock.token}>` });
  }

  private refreshLock(req: DavRequest, names: DavPath, timeout: number): DavResponse {
    const tokens = this.checkIf(req, names);
    if (tokens.length === 0) throw new DavError('ERR_DAV_LOCK_REFRESH_NO_TOKEN', 'a LOCK without a body refreshes a lock and needs its token in an If header');
    let lock: Lock | undefined;
    for (const token of tokens) {
      try {
        lock = this.locks.refresh(token, keyOf(names), timeout);
        break;
      } catch (err) {
        if (!(err instanceof LockNotFoundError)) throw err;
      }
    }
    if (!lock) throw new DavError('ERR_DAV_LOCK_REFRESH_MISMATCH', 'no lock with the submitted token covers this resource', 'lock-token-matches-request-uri');
    return lockResponse(lock, this.now(), 200);
  }

  private async unlock(req: DavRequest, names: DavPath): Promise<DavResponse> {
    const token = parseLockToken(req);
    try {
      this.locks.unlock(token, keyOf(names));
    } catch (err) {
      if (err instanceof LockNotFoundError) throw new DavError(err.code, 'no lock with this token covers this resource', 'lock-token-matches-request-uri');
      throw err;
    }
    return { status: 204, headers: {} };
  }

  private require(names: DavPath): DavEntry {
    const entry = this.store.stat(names);
    if (!entry) throw new DavError('ERR_NOT_FOUND', `${joinPath(names)} does not exist`);
    return entry;
  }
}

export function optionsResponse(): DavResponse {
  return { status: 200, headers: { dav: '1, 2', 'ms-author-via': 'DAV', allow: ALLOW, 'content-length': 0 } };
}
