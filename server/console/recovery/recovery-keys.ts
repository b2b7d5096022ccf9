/**
 * The organisation's recovery private key as an administrator hands it to
 * the console's recovery view: held for one web session only, in memory.
 *
 * Security considerations:
 * - The key is parsed at once into a KeyObject (node:crypto keeps its bytes
 *   outside the JS heap) and held in a WeakMap keyed by the web session
 *   object: it is never written to a file, the store, the audit trail or a
 *   log, and is not in any cookie or page. The pasted text itself (the form
 *   body's strings) is not kept; JavaScript cannot wipe a string, so it stays
 *   in the process's memory until the garbage collector reuses it.
 * - It is dropped at logout (`drop`), when the session ends (the session
 *   object is forgotten by the sessions table, so the key becomes
 *   unreachable; no request can reach it again) and HOLD_MS after it was
 *   given, whichever comes first. A console restart forgets it too.
 * - Only a P-256 private key in PEM is taken (what `mydoc init` makes);
 *   an encrypted PEM or anything else is refused with a sentence that
 *   never repeats what was pasted.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { Clock } from '../../../shares/clock.js';
import { RecoveryError } from './errors.js';

/** A held key is dropped this long after it was given. */
export const HOLD_MS = 60 * 60 * 1000;
/** Longer than any PEM P-256 private key (about 240 characters) with room for a comment. */
const MAX_PEM_CHARS = 4096;

interface Held {
  key: KeyObject;
  until: number;
}

/** Parses a pasted PEM into the recovery private key; ERR_RECOVERY_KEY when it is not one. */
export function parseRecoveryKey(pem: string): KeyObject {
  const text = pem.trim();
  if (text === '' || text.length > MAX_PEM_CHARS || !text.startsWith('-----BEGIN ')) {
    throw new RecoveryError('ERR_RECOVERY_KEY', 'paste the recovery private key as PEM text, starting with -----BEGIN PRIVATE KEY-----');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new RecoveryError('ERR_RECOVERY_KEY', 'this is not a PEM private key (an encrypted key is not taken: give the key without a passphrase)');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new RecoveryError('ERR_RECOVERY_KEY', 'this is not a P-256 private key; the recovery key is the P-256 key made by mydoc init');
  }
  return key;
}

export class RecoveryKeys {
  private readonly held = new WeakMap<object, Held>();

  constructor(private readonly clock: Clock) {}

  /** Holds the key `pem` for the web session `session` (replacing one held before). */
  hold(session: object, pem: string): { until: number } {
    const until = this.clock() + HOLD_MS;
    this.held.set(session, { key: parseRecoveryKey(pem), until });
    return { until };
  }

  /** The key held for `session` and until when, or undefined (none, or dropped after HOLD_MS). */
  get(session: object): Held | undefined {
    const held = this.held.get(session);
    if (held && this.clock() >= held.until) {
      this.held.delete(session);
      return undefined;
    }
    return held;
  }

  drop(session: object): void {
    this.held.delete(session);
  }
}
