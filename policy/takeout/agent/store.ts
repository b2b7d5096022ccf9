/**
 * The take-out state of this PC, in one file, `<dataDir>/takeout/state.json`
 * (0600, replaced atomically on every change):
 *
 *   {"format":"mydoc-takeout","version":1,
 *    "requests":{<rid>:{"rid","user","days","reason","requested":<ISO>,
 *                        "envelopes":{<issuer kid>:<JWE of K_to to that issuer>}}},
 *    "keys":{<user>:{"token":<take-out key JWT>,"jti","nbf","exp","approvedBy",
 *                    "installed":<ISO>,"used":<ISO, first offline use>?}},
 *    "revoked":{<jti>:<exp, NumericDate>},
 *    "ended":{<user>:{"rid","user","days","reason","requested":<ISO>,
 *                     "outcome":"denied"|"expired","note","by","at":<ISO>}}}
 * `ended` keeps, per user, their last request that ended unapproved (denied
 * by an approver with a note, or expired unanswered) until they ask again;
 * files written before it existed have none (read as empty).
 *
 * Security considerations: nothing here opens data by itself. A pending
 * request's K_to is encrypted to the issuers (the agent cannot read it); an
 * installed key's K_to is encrypted to the device key and slot T still needs
 * the user's password. The file is 0600 anyway, and every field read back
 * is re-verified before use (the JWT by signature; the rest is bookkeeping).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../crypto/atomic-file.js';
import { TakeoutError } from '../errors.js';
import { dataFolder } from '../../../shares/data-folder.js';

export interface PendingRequest {
  rid: string;
  user: string;
  days: number;
  reason: string;
  requested: string;
  envelopes: Record<string, string>;
}

export interface InstalledKey {
  token: string;
  jti: string;
  nbf: number;
  exp: number;
  approvedBy: string;
  installed: string;
  used?: string;
}

/** A user's last request that ended without a key: denied by an approver (with a note) or expired unanswered. */
export interface EndedRequest {
  rid: string;
  user: string;
  days: number;
  reason: string;
  requested: string;
  outcome: 'denied' | 'expired';
  note: string;
  /** The approver who denied, or `console` for an expiry. */
  by: string;
  at: string;
}

export interface TakeoutState {
  format: 'mydoc-takeout';
  version: 1;
  requests: Record<string, PendingRequest>;
  keys: Record<string, InstalledKey>;
  revoked: Record<string, number>;
  ended: Record<string, EndedRequest>;
}

export function takeoutDir(dataDir: string): string {
  return dataFolder(dataDir).takeout;
}

/** Reads and writes the state file; callers serialize their changes. */
export class TakeoutStore {
  private constructor(
    private readonly file: string,
    private current: TakeoutState,
  ) {}

  static async open(dataDir: string): Promise<TakeoutStore> {
    const file = join(takeoutDir(dataDir), 'state.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new TakeoutStore(file, { format: 'mydoc-takeout', version: 1, requests: {}, keys: {}, revoked: {}, ended: {} });
      throw new TakeoutError('ERR_TAKEOUT_STATE', `cannot read the take-out state ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    let data: TakeoutState;
    try {
      data = JSON.parse(text) as TakeoutState;
    } catch {
      throw new TakeoutError('ERR_TAKEOUT_STATE', `the take-out state ${file} is not valid JSON`);
    }
    const isMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (data?.format !== 'mydoc-takeout' || data.version !== 1 || !isMap(data.requests) || !isMap(data.keys) || !isMap(data.revoked) || (data.ended !== undefined && !isMap(data.ended))) {
      throw new TakeoutError('ERR_TAKEOUT_STATE', `the take-out state ${file} is malformed or of an unsupported version`);
    }
    return new TakeoutStore(file, { ...data, ended: data.ended ?? {} });
  }

  /** The state as last written (do not modify it: use `update`). */
  get state(): Readonly<TakeoutState> {
    return this.current;
  }

  /** Applies `change` to a copy of the state and writes it; the state changes only once it is on disk. */
  async update(change: (draft: TakeoutState) => void): Promise<void> {
    const draft = structuredClone(this.current);
    change(draft);
    await writeFileAtomic(this.file, JSON.stringify(draft, null, 2) + '\n', 0o600);
    this.current = draft;
  }
}
