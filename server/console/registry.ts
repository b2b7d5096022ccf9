/**
 * The console's registry of PCs as the link server sees it (LinkRegistry of
 * link/hub.ts): who is admitted on a link, what each PC reports, and when it
 * was last seen.
 *
 * Admission. A PC enrolled before must come back with the device key it
 * enrolled with (its device id, the SHA-256 of the SPKI its TLS certificate
 * proved); a PC not enrolled yet must present an enrolment token that the
 * store accepts, once, for the pcId it claims (`consumeEnrolment`), with a
 * device key not enrolled as another PC; a removed PC is refused.
 * Every refusal is written to the audit trail with its reason, and so is
 * every enrolment; the same refusal of one device again within a minute is
 * counted, and the count is in its next record (an agent retrying, or a
 * flood, costs one audit record a minute per device and reason).
 *
 * Status. A state change (gate, take-out end, users, last backup, version)
 * is written at once, in order per PC, one write in flight per PC: changes
 * that come meanwhile wait, and only the newest of them is written (a PC
 * sending changes fast costs one write at a time, not a growing queue); presence (last seen) is kept in
 * memory and written for all PCs in one `touchPresence` every few seconds.
 * Known users: a status naming a user the PC never reported before adds
 * that user to the PC's known users (`addKnownUsers`, before the status
 * itself); the set, read once per link, is kept in memory, so only a status
 * that makes it grow costs that write (the agent reports open sessions only,
 * and keeps no plaintext user names on its disk: the console remembers them).
 *
 * Security considerations: nothing is trusted on a pcId alone: the device id
 * comes from the TLS handshake, not from the agent's words; the enrolment
 * token is hashed at once and never logged or audited; what the agent
 * claims (pcId, version) is checked by the link's wire module before it gets
 * here and is written to logs and the audit trail only as data.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../policy/audit/log.js';
import type { Clock } from '../../shares/clock.js';
import type { AgentEvent, Refusal, RefusalCode } from '../link/protocol.js';
import type { PcStatus } from '../link/status.js';
import { hashEnrolmentToken } from './enrolment.js';
import type { Admission, AdmitPeer, LinkRegistry } from './link/hub.js';
import type { ConsoleStore, EnrolmentResult } from './store/store.js';

type Logger = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error' | 'debug'>;

export interface RegistryOptions {
  store: ConsoleStore;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  /** What the agents report besides their status (take-out requests); errors are logged. */
  onAgentEvent: (pcId: string, event: AgentEvent) => Promise<void>;
  /** A PC's link is up (take-out tells it what was decided while it was away); errors are logged. */
  onConnected: (pcId: string) => Promise<void>;
  /** How often presence is written (default 5 s). */
  presenceFlushMs?: number;
}

/** One device's same refusal is audited at most this often; the rest are counted in the next record. */
export const REFUSAL_AUDIT_MS = 60_000;
/** Refusals remembered for that; beyond it, those older than REFUSAL_AUDIT_MS are forgotten. */
const MAX_REFUSALS_KEPT = 10_000;

/** Presence is written this often by default. */
export const PRESENCE_FLUSH_MS = 5000;

const shortId = (deviceId: string): string => `${deviceId.slice(0, 16)}…`;

function refusalMessage(code: Exclude<EnrolmentResult, { ok: true }>['code'], pcId: string): string {
  switch (code) {
    case 'ERR_ENROL_UNKNOWN':
      return `the enrolment token is not one this console issued for PC ${pcId}`;
    case 'ERR_ENROL_USED':
      return `the enrolment token of PC ${pcId} was used already (a token enrols once); make a new one with "mydoc console pc add ${pcId}"`;
    case 'ERR_ENROL_EXPIRED':
      return `the enrolment token of PC ${pcId} has expired; make a new one with "mydoc console pc add ${pcId}"`;
    case 'ERR_ENROL_REMOVED':
      return `PC ${pcId} was removed from this console`;
    case 'ERR_ENROL_TAKEN':
      return `PC ${pcId} is enrolled with another device key, or this device key is enrolled as another PC`;
  }
}

function sameStatus(a: PcStatus | null | undefined, b: PcStatus): boolean {
  return (
    a !== null &&
    a !== undefined &&
    a.gate === b.gate &&
    a.takeoutUntil === b.takeoutUntil &&
    a.lastBackupAt === b.lastBackupAt &&
    a.agentVersion === b.agentVersion &&
    a.users.length === b.users.length &&
    a.users.every((user, i) => user === b.users[i])
  );
}

export class Registry implements LinkRegistry {
  /** Last seen, by PC, not yet written. */
  private readonly seen = new Map<string, number>();
  /** The last status written, by connected PC. */
  private readonly lastStatus = new Map<string, PcStatus | null>();
  /** The status write in flight, by PC: at most one each. */
  private readonly writes = new Map<string, Promise<void>>();
  /** The users each PC is known to have reported (read from the store at its first status write of a link). */
  private readonly knownUsers = new Map<string, Set<string>>();
  /** The newest status waiting for its PC's write in flight (an older one waiting is replaced, never written). */
  private readonly nextStatus = new Map<string, { status: PcStatus; at: number }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  /** The last audited refusal, by device id and code, and how many like it were not recorded since. */
  private readonly refusals = new Map<string, { at: number; unrecorded: number }>();

  constructor(private readonly opts: RegistryOptions) {
    this.timer = setInterval(() => void this.flush(), opts.presenceFlushMs ?? PRESENCE_FLUSH_MS);
    this.timer.unref();
  }

  async admit(peer: AdmitPeer): Promise<Admission> {
    const { pcId, enrolmentToken } = peer.identity;
    const row = await this.opts.store.getPc(pcId);
    const refuse = (code: RefusalCode, message: string) => this.refuse(peer, { code, message });
    if (row === undefined) return refuse('ERR_ENROL_UNKNOWN', `PC ${pcId} is not registered on this console (an administrator adds it with "mydoc console pc add ${pcId}")`);
    if (row.removedAt !== null) return refuse('ERR_ENROL_REMOVED', refusalMessage('ERR_ENROL_REMOVED', pcId));
    if (row.deviceId !== null && row.deviceId === peer.deviceId) {
      this.lastStatus.set(pcId, row.status);
      this.knownUsers.delete(pcId);
      // A token again from the enrolled device: its welcome was lost; tell it again that it is enrolled.
      return { ok: true, pcId, enrolled: enrolmentToken !== undefined };
    }
    if (enrolmentToken === undefined) {
      if (row.deviceId !== null) return refuse('ERR_LINK_WRONG_DEVICE', `PC ${pcId} is enrolled with another device key (${shortId(row.deviceId)}); this device (${shortId(peer.deviceId)}) is refused`);
      return refuse('ERR_LINK_NOT_ENROLLED', `PC ${pcId} is registered but not enrolled: its configuration needs console.enrolmentToken (printed by "mydoc console pc add ${pcId}")`);
    }
    // One device is one PC: consumeEnrolment refuses a key enrolled as another PC (ERR_ENROL_TAKEN), in its transaction.
    const result = await this.opts.store.consumeEnrolment(pcId, hashEnrolmentToken(enrolmentToken), peer.deviceId, peer.devicePublicPem, this.opts.clock());
    if (!result.ok) {
      const other = result.code === 'ERR_ENROL_TAKEN' ? await this.opts.store.getPcByDevice(peer.deviceId) : undefined;
      if (other !== undefined && other.pcId !== pcId) return refuse('ERR_ENROL_TAKEN', `this device key is enrolled as PC ${other.pcId}; it cannot enrol as PC ${pcId} too`);
      return refuse(result.code, refusalMessage(result.code, pcId));
    }
    await this.opts.audit.append({ actor: 'agent', action: 'pc.enrol', target: pcId, decision: 'allow', reason: `enrolled with device ${peer.deviceId} from ${peer.address}` });
    this.opts.logger.info({ pcId, deviceId: peer.deviceId }, 'PC enrolled');
    this.lastStatus.set(pcId, null);
    this.knownUsers.delete(pcId);
    return { ok: true, pcId, enrolled: true };
  }

  connected(pcId: string): void {
    this.seen.set(pcId, this.opts.clock());
    this.opts.onConnected(pcId).catch((err: { code?: string; message?: string }) => {
      this.opts.logger.error({ pcId, code: err.code, err: err.message }, 'what a PC missed while away could not be sent');
    });
  }

  disconnected(pcId: string): void {
    this.seen.set(pcId, this.opts.clock());
    this.lastStatus.delete(pcId);
    this.knownUsers.delete(pcId);
  }

  status(pcId: string, status: PcStatus): void {
    const now = this.opts.clock();
    this.seen.set(pcId, now);
    if (sameStatus(this.lastStatus.get(pcId), status)) return;
    this.lastStatus.set(pcId, status);
    if (this.writes.has(pcId)) {
      this.nextStatus.set(pcId, { status, at: now });
      return;
    }
    this.writes.set(pcId, this.writeStatus(pcId, { status, at: now }));
  }

  /** Writes a PC's status, then the newest one that came meanwhile, until none waits. */
  private async writeStatus(pcId: string, first: { status: PcStatus; at: number }): Promise<void> {
    try {
      for (let next: { status: PcStatus; at: number } | undefined = first; next !== undefined; next = this.takeNextStatus(pcId)) {
        try {
          await this.rememberUsers(pcId, next.status.users, next.at);
          await this.opts.store.saveStatus(pcId, next.status, next.at);
        } catch (err) {
          // Written again at the next change; the presence batch still records the PC as seen.
          this.lastStatus.delete(pcId);
          this.opts.logger.error({ pcId, code: (err as { code?: string }).code, err: (err as Error).message }, 'the status of a PC could not be stored');
        }
      }
    } finally {
      this.writes.delete(pcId);
    }
  }

  /** Adds the users of a status that the PC never reported before to its known users (no write when there are none). */
  private async rememberUsers(pcId: string, users: readonly string[], at: number): Promise<void> {
    let known = this.knownUsers.get(pcId);
    if (known === undefined) {
      known = new Set(await this.opts.store.listKnownUsers(pcId));
      this.knownUsers.set(pcId, known);
    }
    const added = users.filter((u) => !known.has(u));
    if (added.length === 0) return;
    await this.opts.store.addKnownUsers(pcId, added, at);
    for (const u of added) known.add(u);
  }

  private takeNextStatus(pcId: string): { status: PcStatus; at: number } | undefined {
    const next = this.nextStatus.get(pcId);
    this.nextStatus.delete(pcId);
    return next;
  }

  event(pcId: string, event: AgentEvent): void {
    this.seen.set(pcId, this.opts.clock());
    this.opts.onAgentEvent(pcId, event).catch((err: { code?: string; message?: string }) => {
      this.opts.logger.error({ pcId, type: event.type, code: err.code, err: err.message }, 'an event of a PC could not be handled');
    });
  }

  /** Writes the presence gathered since the last flush in one statement (also run every few seconds). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.seen.size === 0) return;
      const batch = [...this.seen].map(([pcId, at]) => ({ pcId, at }));
      this.seen.clear();
      try {
        await this.opts.store.touchPresence(batch);
      } catch (err) {
        // Kept for the next flush, unless the PC was seen again meanwhile.
        for (const { pcId, at } of batch) if (!this.seen.has(pcId)) this.seen.set(pcId, at);
        this.opts.logger.error({ code: (err as { code?: string }).code, err: (err as Error).message, pcs: batch.length }, 'presence could not be stored');
      }
    });
    return this.flushing;
  }

  /** Stops the timer, waits for the status writes and writes the last presence. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.writes.values());
    await this.flush();
  }

  private async refuse(peer: AdmitPeer, refusal: Refusal): Promise<Admission> {
    const { pcId, enrolmentToken } = peer.identity;
    const now = this.opts.clock();
    const key = `${peer.deviceId} ${refusal.code}`;
    const last = this.refusals.get(key);
    if (last !== undefined && now - last.at < REFUSAL_AUDIT_MS) {
      last.unrecorded++;
      return { ok: false, refusal };
    }
    if (this.refusals.size >= MAX_REFUSALS_KEPT) for (const [k, r] of this.refusals) if (now - r.at >= REFUSAL_AUDIT_MS) this.refusals.delete(k);
    this.refusals.set(key, { at: now, unrecorded: 0 });
    const repeated = last !== undefined && last.unrecorded > 0 ? `; ${last.unrecorded} more such refusals of this device since the last record` : '';
    await this.opts.audit.append({
      actor: 'agent',
      action: enrolmentToken === undefined ? 'pc.connect' : 'pc.enrol',
      target: pcId,
      decision: 'deny',
      reason: `${refusal.code}: ${refusal.message} (device ${peer.deviceId}, from ${peer.address}${repeated})`,
    });
    return { ok: false, refusal };
  }
}
