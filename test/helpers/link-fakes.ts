/**
 * Test helper for the link's unit tests: an in-process registry that
 * admits by a token table (the real registry is the console's, over its
 * store), a logger that keeps its lines, and an agent identity (device key
 * pair) in a temporary data folder.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { generateP256KeyPair } from '../../crypto/key-files.js';
import type { AdmitPeer, Admission, LinkRegistry } from '../../server/console/link/hub.js';
import type { AgentEvent } from '../../server/link/protocol.js';
import type { PcStatus } from '../../server/link/status.js';
import { generateIssuerKeyPair } from '../../policy/takeout/issuer-keys.js';

export interface LogLine {
  level: string;
  msg: string;
  obj: unknown;
}

export function captureLogger(): { logger: { info: Fn; warn: Fn; error: Fn; debug: Fn }; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const at = (level: string): Fn => (a: unknown, b?: unknown) => {
    lines.push(typeof a === 'string' ? { level, msg: a, obj: undefined } : { level, msg: typeof b === 'string' ? b : '', obj: a });
  };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines, text: () => lines.map((l) => `${l.level}: ${l.msg} ${l.obj ? JSON.stringify(l.obj) : ''}`).join('\n') };
}
type Fn = (a: unknown, b?: unknown) => void;

/** Admits a pcId with its one token (once), then only the device it enrolled. */
export class FakeRegistry implements LinkRegistry {
  readonly tokens = new Map<string, string>();
  readonly devices = new Map<string, string>();
  readonly removed = new Set<string>();
  readonly admits: AdmitPeer[] = [];
  readonly statuses: { pcId: string; status: PcStatus; at: number }[] = [];
  readonly events: { pcId: string; event: AgentEvent }[] = [];
  readonly online = new Set<string>();
  readonly log: string[] = [];

  /** When set, admit waits for it (a test holds an admission in flight). */
  hold: Promise<void> | undefined;

  async admit(peer: AdmitPeer): Promise<Admission> {
    this.admits.push(peer);
    const answer = this.decide(peer);
    await this.hold;
    return answer;
  }

  private decide(peer: AdmitPeer): Admission {
    const { pcId, enrolmentToken } = peer.identity;
    if (this.removed.has(pcId)) return { ok: false, refusal: { code: 'ERR_ENROL_REMOVED', message: `PC ${pcId} was removed from the console` } };
    const device = this.devices.get(pcId);
    if (device !== undefined) {
      if (device === peer.deviceId) return { ok: true, pcId, enrolled: false };
      return { ok: false, refusal: { code: enrolmentToken ? 'ERR_ENROL_TAKEN' : 'ERR_LINK_WRONG_DEVICE', message: `PC ${pcId} is enrolled with another device key` } };
    }
    if (enrolmentToken === undefined) return { ok: false, refusal: { code: 'ERR_LINK_NOT_ENROLLED', message: `PC ${pcId} is not enrolled` } };
    if (this.tokens.get(pcId) !== enrolmentToken) return { ok: false, refusal: { code: 'ERR_ENROL_UNKNOWN', message: 'the enrolment token is not known' } };
    this.tokens.delete(pcId);
    this.devices.set(pcId, peer.deviceId);
    return { ok: true, pcId, enrolled: true };
  }

  connected(pcId: string): void {
    this.online.add(pcId);
    this.log.push(`connected ${pcId}`);
  }

  disconnected(pcId: string): void {
    this.online.delete(pcId);
    this.log.push(`disconnected ${pcId}`);
  }

  status(pcId: string, status: PcStatus): void {
    this.statuses.push({ pcId, status, at: Date.now() });
  }

  event(pcId: string, event: AgentEvent): void {
    this.events.push({ pcId, event });
  }
}

export interface AgentIdentity {
  dataDir: string;
  deviceKey: KeyObject;
  devicePublicPem: string;
}

export async function agentIdentity(dir: string, name: string): Promise<AgentIdentity> {
  const dataDir = join(dir, name);
  await mkdir(dataDir, { recursive: true });
  const pair = generateP256KeyPair();
  return { dataDir, deviceKey: createPrivateKey(pair.privatePem), devicePublicPem: pair.publicPem };
}

/** Polls `check` every 20 ms until true; fails with `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An issuer public key for link servers in tests that do not sign anything (the agent pins it). */
export const TEST_CONSOLE_KEY = (await generateIssuerKeyPair('EdDSA')).publicPem;
