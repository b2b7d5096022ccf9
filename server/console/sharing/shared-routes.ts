/**
 * The console's WebDAV for share grantees: /shared (issue 12, Sharing).
 *
 *   /shared/                          virtual: owners that shared something with the caller, `<user>@<pcId>`
 *   /shared/<owner>/                  virtual: the folders shared with the caller (each named by its last name)
 *   /shared/<owner>/<folder>/...      forwarded down the owner's link (dav/forward.ts) with a share grant
 *
 * Security considerations:
 * - Any account of the console's directory may log in (Basic over HTTPS,
 *   grantee-basic.ts); what it sees is only the live rules naming it or one
 *   of its groups (nested resolved by the directory). A name it does not
 *   reach is 404, the same as one that does not exist.
 * - Paths are decoded once from the raw URL (shares/webdav/paths.ts) as for
 *   /pcs; the router never decodes them.
 * - The console decides first (a `read` rule: GET, HEAD, PROPFIND, OPTIONS;
 *   `readwrite`: also changes; MOVE/COPY only to a Destination inside the
 *   same shared folder), and the agent again on the grant (kind share, its
 *   rule id, the grantee's groups, root = prefix = the rule's folder) and on
 *   the rule set it holds (signed by this console, expiry on its own clock).
 * - One line in the console's trail per request that reaches a share or is
 *   refused (action share.access): the grantee, `<pcId>/<user>/<folder...>`,
 *   method, status, request id and rule id. No path is logged (pino).
 * - Two rules of one owner whose folders end in the same name: the newest
 *   one is shown under that name.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { AuditLog } from '../../../policy/audit/log.js';
import type { Clock } from '../../../shares/clock.js';
import { toDavError } from '../../../shares/webdav/errors.js';
import { decodeDestination, encodeHref } from '../../../shares/webdav/paths.js';
import { forwardToAgent, sendPlain, type ForwardDeps } from '../dav/forward.js';
import { DAV_ROUTES, dropBody, openDavRequest, rawUrlOf, registerDavRoute, sendVirtual } from '../dav/dav-request.js';
import type { VirtualChild } from '../dav/virtual.js';
import type { ShareRuleRow } from '../store/store.js';
import { SHARED_REALM, type Grantee, type GranteeBasicAuth } from './grantee-basic.js';
import type { ShareRules } from './share-rules.js';

/** Methods a `read` rule allows. */
export const SHARE_READS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PROPFIND', 'OPTIONS']);

export interface SharedDavDeps {
  rules: Pick<ShareRules, 'forGrantee' | 'granteeGroups'>;
  auth: Pick<GranteeBasicAuth, 'verify'>;
  forward: ForwardDeps;
  audit: Pick<AuditLog, 'append'>;
  clock: Clock;
  logger: Pick<FastifyBaseLogger, 'error'>;
}

/** The name of an owner under /shared/. */
export function ownerName(rule: Pick<ShareRuleRow, 'user' | 'pcId'>): string {
  return `${rule.user}@${rule.pcId}`;
}

export function registerSharedDav(app: FastifyInstance, deps: SharedDavDeps): void {
  registerDavRoute(app, DAV_ROUTES.shared, (req, reply) => handle(req, reply, deps));
}



async function trail(deps: SharedDavDeps, grantee: Grantee, target: string, decision: 'allow' | 'deny', reason: string): Promise<void> {
  await deps.audit.append({ actor: grantee.name, action: 'share.access', target, decision, reason }).catch((err: Error) => {
    deps.logger.error({ err: err.message }, 'shared: the audit line could not be written');
  });
}

/**
 * The grant's groups: the grantee's (as the directory named them), and the
 * rule's own spelling of its group when it matched (names compare
 * case-insensitively here; the agent then finds the rule's name exactly).
 */
function grantGroups(grantee: Grantee, rule: ShareRuleRow): string[] {
  return [...new Set([...grantee.groups, ...(rule.grantee.kind === 'group' ? [rule.grantee.name] : [])])];
}

/** The folders of one owner as the grantee sees them: last name -> newest rule. */
function foldersOf(rules: readonly ShareRuleRow[], owner: string): Map<string, ShareRuleRow> {
  const out = new Map<string, ShareRuleRow>();
  for (const r of rules) if (ownerName(r) === owner && !out.has(r.folder.at(-1)!)) out.set(r.folder.at(-1)!, r);
  return out;
}

async function handle(req: FastifyRequest, reply: FastifyReply, deps: SharedDavDeps): Promise<FastifyReply> {
  const method = req.method;
  const opened = await openDavRequest(req, reply, 'shared', SHARED_REALM, async () => deps.auth.verify(req.headers.authorization, req.ip, await deps.rules.granteeGroups()));
  if (!opened) return reply;
  const { names, login } = opened;
  const grantee = login.grantee;
  const rules = await deps.rules.forGrantee(grantee.name, grantee.groups);
  const [, owner, folderName, ...rest] = names;
  const now = deps.clock();

  // The virtual levels: only what is shared with the caller.
  if (owner === undefined || folderName === undefined) {
    if (!SHARE_READS.has(method)) {
      dropBody(req, reply);
      return sendPlain(reply, 403, 'the shared folders are listed here; write inside one of them');
    }
    if (owner === undefined) {
      const owners = new Map<string, VirtualChild>();
      for (const r of rules) if (!owners.has(ownerName(r))) owners.set(ownerName(r), { name: ownerName(r), modified: r.createdAt });
      return sendVirtual(req, reply, ['shared'], now, [...owners.values()], now);
    }
    const folders = foldersOf(rules, owner);
    if (folders.size === 0) {
      dropBody(req, reply);
      return sendPlain(reply, 404, 'nothing is shared with you under this name');
    }
    const children = [...folders].map(([name, r]) => ({ name, modified: r.createdAt }));
    return sendVirtual(req, reply, ['shared', owner], now, children, now);
  }

  const rule = foldersOf(rules, owner).get(folderName);
  if (!rule) {
    dropBody(req, reply);
    return sendPlain(reply, 404, 'nothing is shared with you under this name');
  }
  const target = `${rule.pcId}/${rule.user}/${[...rule.folder, ...rest].join('/')}`;
  const refuse = async (status: number, message: string, why: string) => {
    dropBody(req, reply);
    await trail(deps, grantee, target, 'deny', `${method} ${status} request ${randomUUID()} rule ${rule.id} ${why}`);
    return sendPlain(reply, status, message);
  };
  if (rule.access === 'read' && !SHARE_READS.has(method)) return refuse(403, `this folder is shared with you read-only; ${method} is not allowed`, 'read-only');
  if (method === 'MOVE' || method === 'COPY') {
    let dest: string[];
    try {
      dest = decodeDestination(typeof req.headers.destination === 'string' ? req.headers.destination : undefined, typeof req.headers.host === 'string' ? req.headers.host : undefined);
    } catch (err) {
      const e = toDavError(err);
      return refuse(e.status, e.message, e.code);
    }
    if (dest[0] !== 'shared' || dest[1] !== owner || dest[2] !== folderName || dest.length < 4) return refuse(403, `${method} stays inside the shared folder`, 'destination outside the share');
  }
  await forwardToAgent(
    deps.forward,
    {
      pcId: rule.pcId, method, rawUrl: rawUrlOf(req), headers: req.headers, body: req.body as Readable | undefined,
      grant: {
        actor: grantee.name, kind: 'share', role: 'share', user: rule.user, access: rule.access, ruleId: rule.id, groups: grantGroups(grantee, rule),
        base: encodeHref(['shared', owner, folderName], false), root: [...rule.folder], prefix: [...rule.folder],
      },
    },
    reply,
    { onOutcome: (o) => trail(deps, grantee, target, o.code === undefined ? 'allow' : 'deny', `${method} ${o.status} request ${o.requestId} rule ${rule.id}${o.code ? ` ${o.code}` : ''}`) },
  );
  return reply;
}

