/**
 * The recovery view's routes on the administrators' page (registered by
 * web/register.ts inside its /admin context, with its sessions and CSRF
 * checks): GET /admin/pcs/<pcId>/recovery, POST .../recovery/key (hold the
 * pasted recovery private key for this web session), POST
 * .../recovery/forget (drop it).
 *
 * Security considerations:
 * - Role `data` for all three; the PC must be offline, enrolled (its device
 *   key pinned) and the console must have `recovery.target`; the POSTs need
 *   the session's CSRF token (web/register.ts `posted`).
 * - The key lives in RecoveryKeys (memory, this session, at most 1 h; see
 *   recovery-keys.ts); nothing here logs or stores it. A key that does not
 *   open the snapshot's recovery slots is dropped at once.
 * - The console's trail records each step: `recovery.key` (held or
 *   refused), `recovery.view` (the snapshot listed, or why not),
 *   `recovery.forget`; actor = the administrator, target = the PC. A
 *   logged-in administrator refused by the role or CSRF check is recorded
 *   too, with the refusal's code.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent } from '../../../policy/audit/log.js';
import type { Clock } from '../../../shares/clock.js';
import type { BackupTargetConfig } from '../../config/config.js';
import { codeOf } from '../../http/error-status.js';
import type { Role } from '../config.js';
import type { PcRow } from '../store/store.js';
import { WebError } from '../web/errors.js';
import type { PageContext } from '../web/pages.js';
import { RecoveryError } from './errors.js';
import { recoveryPage } from './recovery-page.js';
import type { RecoveryKeys } from './recovery-keys.js';
import { readSnapshotTree } from './snapshot-tree.js';

/** What the console gives the recovery view (compose.ts). */
export interface RecoveryDeps {
  /** `recovery.target`; null: no recovery view. */
  target: BackupTargetConfig | null;
  keys: RecoveryKeys;
  audit: { append(event: AuditEvent): Promise<unknown> };
}

/** What web/register.ts lends the routes: its session, role and CSRF checks. */
export interface RecoveryWebContext {
  deps: RecoveryDeps;
  getPc(pcId: string): Promise<PcRow | undefined>;
  isOnline(pc: PcRow, now: number): boolean;
  /** The page's context for `role` (undefined: a redirect to the login was sent), with the session object. */
  page(req: FastifyRequest, reply: FastifyReply, role: Role): { ctx: PageContext; session: object } | undefined;
  /** The session of a POST with the right CSRF token and `role` (throws the refusal otherwise). */
  posted(req: FastifyRequest, role: Role): { admin: { name: string } };
  /** The logged-in administrator's name, if any (to audit a refusal before the role check passed). */
  adminOf(req: FastifyRequest): string | undefined;
  field(fields: unknown, name: string): string | undefined;
  clock: Clock;
  logger: FastifyBaseLogger;
}

export function registerRecoveryRoutes(web: FastifyInstance, c: RecoveryWebContext): void {
  const { deps } = c;
  const audit = (actor: string, action: string, pcId: string, decision: 'allow' | 'deny', reason: string) => deps.audit.append({ actor, action, target: pcId, decision, reason });

  /** The PC, if the recovery view may show it now; throws the refusal otherwise. */
  const viewable = async (pcId: string): Promise<PcRow & { devicePublicPem: string }> => {
    if (!deps.target) throw new RecoveryError('ERR_RECOVERY_OFF', 'this console has no recovery view: set recovery.target (the NAS the agents back up to) in its configuration');
    const pc = await c.getPc(pcId);
    if (!pc) throw new WebError('ERR_WEB_NOT_FOUND', `there is no PC ${pcId}`);
    if (pc.devicePublicPem === null) throw new RecoveryError('ERR_RECOVERY_NOT_ENROLLED', `PC ${pcId} never enrolled: the console has no device key to trust its backups with`);
    if (c.isOnline(pc, c.clock())) throw new RecoveryError('ERR_RECOVERY_ONLINE', `PC ${pcId} is online: the recovery view is for a PC that is offline (browse an online PC's data through the console instead)`);
    return pc as PcRow & { devicePublicPem: string };
  };

  /** Refused before anything else is done: audited with the refusal's code. */
  const refusing = async <T>(actor: string, action: string, pcId: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      await audit(actor, action, pcId, 'deny', codeOf(err) ?? 'ERR_INTERNAL');
      throw err;
    }
  };

  /** `check` (a role or CSRF check of web/register.ts); a refusal of a logged-in administrator is audited. */
  const checked = async <T>(req: FastifyRequest, action: string, check: () => T): Promise<T> => {
    try {
      return check();
    } catch (err) {
      const actor = c.adminOf(req);
      if (actor !== undefined) await audit(actor, action, (req.params as { pcId: string }).pcId, 'deny', codeOf(err) ?? 'ERR_INTERNAL');
      throw err;
    }
  };

  web.get('/pcs/:pcId/recovery', async (req, reply) => {
    const page = await checked(req, 'recovery.view', () => c.page(req, reply, 'data'));
    if (!page) return reply;
    const { ctx, session } = page;
    const { pcId } = req.params as { pcId: string };
    const actor = ctx.admin.name;
    const pc = await refusing(actor, 'recovery.view', pcId, () => viewable(pcId));
    const held = deps.keys.get(session);
    let tree;
    if (held) {
      tree = await refusing(actor, 'recovery.view', pcId, () => readSnapshotTree({ target: deps.target!, pcId, devicePublicPem: pc.devicePublicPem, recoveryPrivateKey: held.key })).catch((err: unknown) => {
        // A key that does not open this PC's recovery slots is not kept.
        if (codeOf(err) === 'ERR_SLOT_OPEN') deps.keys.drop(session);
        throw err;
      });
      await audit(actor, 'recovery.view', pcId, 'allow', `snapshot ${tree.snapshot} listed (${tree.users.length} user(s), ${tree.files} file(s))`);
    }
    return reply.type('text/html; charset=utf-8').send(recoveryPage(ctx, { pc, heldUntil: held?.until, tree, done: c.field(req.query, 'done') }));
  });

  web.post('/pcs/:pcId/recovery/key', async (req, reply) => {
    const session = await checked(req, 'recovery.key', () => c.posted(req, 'data'));
    const { pcId } = req.params as { pcId: string };
    const actor = session.admin.name;
    await refusing(actor, 'recovery.key', pcId, async () => {
      await viewable(pcId);
      const { until } = deps.keys.hold(session, c.field(req.body, 'key') ?? '');
      await audit(actor, 'recovery.key', pcId, 'allow', `recovery key held in memory for this web session until ${new Date(until).toISOString()}`);
    });
    return reply.redirect(`/admin/pcs/${encodeURIComponent(pcId)}/recovery?done=held`, 303);
  });

  web.post('/pcs/:pcId/recovery/forget', async (req, reply) => {
    const session = await checked(req, 'recovery.forget', () => c.posted(req, 'data'));
    const { pcId } = req.params as { pcId: string };
    deps.keys.drop(session);
    await audit(session.admin.name, 'recovery.forget', pcId, 'allow', 'recovery key forgotten');
    return reply.redirect(`/admin/pcs/${encodeURIComponent(pcId)}/recovery?done=forgotten`, 303);
  });
}
