/**
 * What an administrator does to the list of PCs from the console's machine
 * (`mydoc console pc add|remove`): register a PC and give it a one-time
 * enrolment token, or remove it (refused at its next handshake, its link
 * dropped at once). The running console does it for its admin socket; when
 * no console runs, the command does it on the store directly.
 *
 * Security considerations: the token is returned to the caller only (it is
 * printed once); the store keeps its hash, the audit trail neither.
 */
import type { AuditLog } from '../../policy/audit/log.js';
import type { Clock } from '../../shares/clock.js';
import { PC_ID } from '../config/config.js';
import { codeOf } from '../http/error-status.js';
import { newEnrolmentToken } from './enrolment.js';
import { ConsoleError } from './errors.js';
import type { ConsoleStore } from './store/store.js';

export interface PcAdmin {
  store: ConsoleStore;
  audit: AuditLog;
  clock: Clock;
  /** How long a token is valid (enrolment.tokenHours). */
  tokenHours: number;
  /** Closes the PC's link now, if it has one. */
  dropLink: (pcId: string) => void;
}

export interface AddedPc {
  pcId: string;
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  /** The PC was registered already (not enrolled): this token replaces its unused one. */
  renewed: boolean;
}

function checkPcId(pcId: string): void {
  if (!PC_ID.test(pcId)) throw new ConsoleError('ERR_CONSOLE_PC_ID', `"${pcId.slice(0, 80)}" is not a PC id: use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
}

/** Registers `pcId` (or renews the token of a registered, unenrolled PC) and returns its one-time token. */
export async function addPc(admin: PcAdmin, pcId: string, actor: string): Promise<AddedPc> {
  checkPcId(pcId);
  const now = admin.clock();
  let renewed = false;
  try {
    await admin.store.addPc(pcId, now);
  } catch (err) {
    if (codeOf(err) !== 'ERR_STORE_PC_EXISTS') throw err;
    const row = await admin.store.getPc(pcId);
    if (row === undefined || row.enrolledAt !== null) {
      const message = `PC ${pcId} is enrolled already; to enrol it again (e.g. a new device key), remove it first: mydoc console pc remove ${pcId}`;
      await admin.audit.append({ actor, action: 'pc.add', target: pcId, decision: 'deny', reason: message });
      throw new ConsoleError('ERR_CONSOLE_PC_ENROLLED', message);
    }
    renewed = true;
  }
  const { token, hash } = newEnrolmentToken();
  const expiresAt = now + Math.round(admin.tokenHours * 3600_000);
  await admin.store.createEnrolment(pcId, hash, expiresAt);
  const until = new Date(expiresAt).toISOString();
  await admin.audit.append({ actor, action: 'pc.add', target: pcId, decision: 'allow', reason: renewed ? `a new enrolment token, valid until ${until}; the unused one is void` : `registered; enrolment token valid until ${until}` });
  return { pcId, token, expiresAt, renewed };
}

/** Removes `pcId`: refused at its next handshake; its link, if up, is dropped now. */
export async function removePc(admin: PcAdmin, pcId: string, actor: string): Promise<void> {
  checkPcId(pcId);
  const row = await admin.store.getPc(pcId);
  if (row === undefined || row.removedAt !== null || !(await admin.store.removePc(pcId, admin.clock()))) {
    throw new ConsoleError('ERR_CONSOLE_PC_UNKNOWN', `PC ${pcId} is not registered on this console${row?.removedAt ? ' (it was removed already)' : ''}`);
  }
  admin.dropLink(pcId);
  await admin.audit.append({ actor, action: 'pc.remove', target: pcId, decision: 'allow', reason: 'removed: refused at its next handshake, its link dropped' });
}
