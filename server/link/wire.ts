/**
 * How JSON travels on the link's HTTP/2 streams, for both sides: a whole
 * body read with a size cap, and the events stream's JSON lines. Plus the
 * shape checks of what the protocol carries (each side checks what its
 * peer sends; nothing from the wire is trusted as typed).
 *
 * Security considerations: every read is capped (a body at MAX_BODY_BYTES,
 * an event line at MAX_LINE_BYTES); a peer sending more gets its stream
 * reset, never a growing buffer.
 */
import type { Readable } from 'node:stream';
import type { GateState, PcStatus } from './status.js';
import type { AgentEvent, IdentityAnswer, Refusal, RefusalCode, Welcome } from './protocol.js';

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_LINE_BYTES = 1024 * 1024;

/** Thrown for a body or line over its cap or not JSON (the stream is then reset by the caller). */
export class WireError extends Error {
  readonly code = 'ERR_LINK_ANSWER';
}

/** The whole stream as JSON; undefined for an empty body. */
export function readJson(stream: Readable, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stream.destroy();
        reject(new WireError(`a body over ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => {
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new WireError('a body that is not JSON'));
      }
    });
    stream.once('error', reject);
    stream.once('close', () => reject(new WireError('the stream closed before its end')));
  });
}

/** Calls `onValue` for each JSON line of the stream; rejects on a line over the cap or not JSON. Resolves at the stream's end. */
export function readJsonLines(stream: Readable, onValue: (value: unknown) => void, maxLine = MAX_LINE_BYTES): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer[] = [];
    let pendingSize = 0;
    const fail = (message: string) => {
      stream.destroy();
      reject(new WireError(message));
    };
    stream.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const line = Buffer.concat([...pending, chunk.subarray(start, nl)]);
        pending = [];
        pendingSize = 0;
        start = nl + 1;
        // A line that ends in this chunk is checked too, not only the part still waiting for its end.
        if (line.length > maxLine) return fail(`an event line over ${maxLine} bytes`);
        if (line.length === 0) continue;
        let value: unknown;
        try {
          value = JSON.parse(line.toString('utf8'));
        } catch {
          return fail('an event line that is not JSON');
        }
        onValue(value);
      }
      pendingSize += chunk.length - start;
      if (pendingSize > maxLine) return fail(`an event line over ${maxLine} bytes`);
      if (start < chunk.length) pending.push(chunk.subarray(start));
    });
    stream.once('end', () => resolve());
    stream.once('error', reject);
    stream.once('close', () => resolve());
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isShortString = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isTime = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
const PC_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const GATES: readonly GateState[] = ['online', 'takeout', 'locked'];
const REFUSALS: readonly RefusalCode[] = ['ERR_ENROL_UNKNOWN', 'ERR_ENROL_USED', 'ERR_ENROL_EXPIRED', 'ERR_ENROL_REMOVED', 'ERR_ENROL_TAKEN', 'ERR_LINK_NOT_ENROLLED', 'ERR_LINK_WRONG_DEVICE'];
/** More users than a PC has; a status naming more is refused. */
const MAX_USERS = 1000;

export function asIdentity(v: unknown): IdentityAnswer | undefined {
  if (!isObject(v) || typeof v.pcId !== 'string' || !PC_ID.test(v.pcId) || !isShortString(v.agentVersion, 64)) return undefined;
  if (v.enrolmentToken !== undefined && !isShortString(v.enrolmentToken)) return undefined;
  return { pcId: v.pcId, agentVersion: v.agentVersion, ...(v.enrolmentToken !== undefined ? { enrolmentToken: v.enrolmentToken } : {}) };
}

export function asWelcome(v: unknown): Welcome | undefined {
  if (!isObject(v) || typeof v.heartbeatSeconds !== 'number' || !(v.heartbeatSeconds >= 0.1 && v.heartbeatSeconds <= 3600) || typeof v.enrolled !== 'boolean' || !isShortString(v.consoleKey, 4096)) return undefined;
  return { heartbeatSeconds: v.heartbeatSeconds, enrolled: v.enrolled, consoleKey: v.consoleKey };
}

export function asRefusal(v: unknown): Refusal | undefined {
  if (!isObject(v) || !REFUSALS.includes(v.code as RefusalCode) || typeof v.message !== 'string') return undefined;
  return { code: v.code as RefusalCode, message: v.message.slice(0, 1000) };
}

export function asStatus(v: unknown): PcStatus | undefined {
  if (!isObject(v) || !GATES.includes(v.gate as GateState) || !isTime(v.takeoutUntil) || !isTime(v.lastBackupAt) || !isShortString(v.agentVersion, 64)) return undefined;
  if (!Array.isArray(v.users) || v.users.length > MAX_USERS || !v.users.every((u) => isShortString(u))) return undefined;
  return { gate: v.gate as GateState, takeoutUntil: v.takeoutUntil, users: v.users as string[], lastBackupAt: v.lastBackupAt, agentVersion: v.agentVersion };
}

/** A status event checked in full; a take-out request checked for its envelope (the console's take-out checks the rest). */
export function asEvent(v: unknown): AgentEvent | undefined {
  if (!isObject(v)) return undefined;
  if (v.type === 'status') {
    const status = asStatus(v.status);
    return status ? { type: 'status', status } : undefined;
  }
  if (v.type === 'takeout.request' && isObject(v.request)) return v as AgentEvent;
  return undefined;
}
