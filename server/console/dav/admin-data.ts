/**
 * What an administrator may do with a user's data, decided on the console
 * before anything goes down the link (the agent checks the grant again):
 * the `data` role is needed; only reads (GET, HEAD, PROPFIND, OPTIONS);
 * with the two-person rule on, contents (GET) only under an approved access
 * request, names and sizes always. The grant's fields follow from it
 * (parts.md: kind admin, role data, base /pcs/<pcId>/<user>, root [], prefix
 * the request's path below the user). Used by /pcs (pcs-routes.ts) and the
 * web page's file browser, with one audit line format for both.
 *
 * Security considerations: the audit line names the administrator (never
 * the user as actor), `<pcId>/<user><path>` and the request id; the path
 * goes to the console's trail only, never to the process log.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../../policy/audit/log.js';
import { encodeHref } from '../../../shares/webdav/paths.js';
import type { Admin } from '../admins.js';
import type { GrantFields } from './forward.js';

export const ADMIN_WRITE_MESSAGE = "administrators read; they do not write into users' areas";

/** Methods an administrator's request may carry down to a user's data. */
export const ADMIN_READS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PROPFIND', 'OPTIONS']);
/** Methods that change something: never for administrators (403). */
export const ADMIN_WRITES: ReadonlySet<string> = new Set(['PUT', 'DELETE', 'MKCOL', 'PROPPATCH', 'LOCK', 'UNLOCK', 'MOVE', 'COPY', 'POST', 'PATCH']);

export interface AdminDataDeps {
  audit: Pick<AuditLog, 'append'>;
  /** Whether `admin` may read file contents of `user` on `pcId` now (AccessRequests.contentsAllowed). */
  contentsAllowed: (admin: string, pcId: string, user: string) => boolean | Promise<boolean>;
  logger: Pick<FastifyBaseLogger, 'error'>;
}

export type AdminDecision = { ok: true; grant: GrantFields } | { ok: false; status: number; message: string; why: string };

/** The decision on `method` by `admin` on `user`'s data at `rest` (names below the user) on `pcId`. */
export async function decideAdminData(deps: AdminDataDeps, admin: Admin, pcId: string, user: string, rest: readonly string[], method: string): Promise<AdminDecision> {
  if (ADMIN_WRITES.has(method)) return { ok: false, status: 403, message: ADMIN_WRITE_MESSAGE, why: 'write refused' };
  if (!ADMIN_READS.has(method)) return { ok: false, status: 405, message: `${method} is not allowed here`, why: 'method not allowed' };
  if (!admin.roles.has('data')) return { ok: false, status: 403, message: `browsing users' data needs the data role, which ${admin.name} does not have`, why: 'role viewer' };
  const contents = await deps.contentsAllowed(admin.name, pcId, user);
  if (!contents && method === 'GET') {
    return {
      ok: false,
      status: 403,
      message: `reading file contents of ${user} on ${pcId} needs an access request approved by another administrator (the two-person rule is on); names and sizes can be listed`,
      why: 'role data: no approved access request',
    };
  }
  return { ok: true, grant: { actor: admin.name, kind: 'admin', role: 'data', user, access: contents ? 'read' : 'list', base: encodeHref(['pcs', pcId, user], false), root: [], prefix: [...rest] } };
}

/** The trail's target of a request: `<pcId>/<user>/<path>` (as far as the request names them). */
export function dataTarget(names: readonly (string | undefined)[]): string {
  return names.filter((n): n is string => n !== undefined).join('/') || '/';
}

/** One line in the console's trail (action data.access). A failed write is logged, not thrown: the answer is already on its way. */
export async function auditData(deps: AdminDataDeps, admin: Admin, target: string, decision: 'allow' | 'deny', reason: string): Promise<void> {
  await deps.audit.append({ actor: admin.name, action: 'data.access', target, decision, reason }).catch((err: Error) => {
    deps.logger.error({ err: err.message }, 'console dav: the audit line could not be written');
  });
}

/** The reason of a refusal decided on the console (no request went down the link; the id is the trail's own). */
export function refusalReason(method: string, status: number, why: string): string {
  return `${method} ${status} request ${randomUUID()} ${why}`;
}
