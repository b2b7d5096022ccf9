/**
 * The keyring of one user: a random DEK that is only ever on disk wrapped, in
 * key slots (like LUKS). Slots of format version 1:
 * - N (network): KEK = HKDF-SHA-256(K_dir || K_local, salt = DEK id); K_dir
 *   comes from a NetworkSecretSource (the directory), K_local is stored here.
 * - R (recovery): the DEK in a JWE (ECDH-ES, A256GCM) to the organisation's
 *   recovery public key; opens with the recovery private key alone.
 * - T (take-out): KEK = HKDF-SHA-256(K_to || scrypt(password, salt),
 *   salt = DEK id); K_to (32 random bytes) is never stored here: it travels
 *   only inside an administrator-signed take-out key, encrypted to this PC's
 *   device key. At most one slot T; it names the take-out request (`rid`)
 *   it belongs to, and is bound to it and to its user by the AAD:
 *     P    = scrypt(NFC(password), salt, N = 2^15, r = 8, p = 1, dkLen = 32)
 *     KEK  = HKDF(ikm = K_to || P, salt = DEK id (16 raw bytes),
 *                 info = "mydoc keyring v1 slot T", L = 32)
 *     AAD  = "mydoc keyring v1 slot T" \0 dekId(hex) \0 user \0 rid
 *     wrapped = AES-256-GCM(KEK, nonce, AAD, DEK) || tag
 *
 * Security considerations: the DEK is held in memory as a KeyObject only
 * while unlocked; `lock()` drops it. The DEK is never wrapped under a user
 * password alone (a password change would lose the data); slot T needs the
 * password and K_to, so a wrong password and a wrong K_to both fail as the
 * same AES-GCM tag failure. Every slot is bound to its keyring's DEK id
 * (slots N and T through their KDF salt and AAD, slot R through the dekId
 * inside its encrypted payload), so slots cannot be swapped between
 * keyrings. Malformed slots fail as SlotOpenError, never as a raw exception.
 * Adding or removing slot T rewrites the file atomically (temp + rename)
 * from its current content on disk; slots N and R are never rewritten.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, scrypt as scryptCb, type KeyObject } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { CompactEncrypt, calculateJwkThumbprint, compactDecrypt, exportJWK } from 'jose';
import { KeyringError, KeyringLockedError, NetworkSecretUnavailableError, SlotOpenError } from './errors.js';
import { writeFileAtomic } from './atomic-file.js';
import type { DataKey } from './object-format.js';
import type { NetworkSecretSource } from './network-secret.js';

const DEK_SIZE = 32;
const DEK_ID_SIZE = 16;
const K_LOCAL_SIZE = 32;
const SLOT_N_INFO = Buffer.from('mydoc keyring v1 slot N');
const SLOT_N_AAD = 'mydoc keyring v1 slot N';
const RECOVERY_CONTENT_TYPE = 'mydoc-dek+json';
const SLOT_T_INFO = Buffer.from('mydoc keyring v1 slot T');
const SLOT_T_AAD = 'mydoc keyring v1 slot T';
/** The size of K_to, the take-out secret. */
export const TAKEOUT_SECRET_SIZE = 32;
const SLOT_T_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
const SLOT_T_SALT_SIZE = 16;

interface SlotN {
  source: string;
  kLocal: string;
  nonce: string;
  wrapped: string;
}

interface SlotR {
  kid: string;
  jwe: string;
}

interface SlotT {
  rid: string;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  nonce: string;
  wrapped: string;
}

interface KeyringFile {
  format: 'mydoc-keyring';
  version: 1;
  dekId: string;
  slots: { N?: SlotN; R?: SlotR; T?: SlotT };
}

/** What a recovery slot reveals besides the DEK. */
export interface RecoveredIdentity {
  user: string;
  pcId: string;
}

export interface KeyringCreateOptions {
  user: string;
  pcId: string;
  source: NetworkSecretSource;
  recoveryPublicKey: KeyObject;
  /** An existing DEK to wrap (a restore onto a new PC); absent: a fresh one. */
  dataKey?: DataKey;
}

const b64 = (b: Buffer): string => b.toString('base64');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');

function slotNKek(kDir: Buffer, kLocal: Buffer, dekId: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.concat([kDir, kLocal]), dekId, SLOT_N_INFO, 32));
}

function slotNAad(dekId: Buffer, user: string): Buffer {
  return Buffer.from(`${SLOT_N_AAD}\0${dekId.toString('hex')}\0${user}`);
}

function scrypt(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFC'), salt, 32, { ...params, maxmem: SCRYPT_MAXMEM }, (err, key) => (err ? reject(new SlotOpenError('slot T has unusable scrypt parameters')) : resolve(key))),
  );
}

async function slotTKek(kTo: Buffer, password: string, salt: Buffer, params: { N: number; r: number; p: number }, dekId: Buffer): Promise<Buffer> {
  const p = await scrypt(password, salt, params);
  const ikm = Buffer.concat([kTo, p]);
  p.fill(0);
  try {
    return Buffer.from(hkdfSync('sha256', ikm, dekId, SLOT_T_INFO, 32));
  } finally {
    ikm.fill(0);
  }
}

function slotTAad(dekId: Buffer, user: string, rid: string): Buffer {
  return Buffer.from(`${SLOT_T_AAD}\0${dekId.toString('hex')}\0${user}\0${rid}`);
}

/** Wraps the raw DEK under a slot's KEK (AES-256-GCM, random nonce); zeroes the KEK. Returns nonce and ciphertext || tag. */
function wrapDek(kek: Buffer, aad: Buffer, raw: Buffer): { nonce: Buffer; wrapped: Buffer } {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  const wrapped = Buffer.concat([cipher.update(raw), cipher.final(), cipher.getAuthTag()]);
  kek.fill(0);
  return { nonce, wrapped };
}

/** Unwraps the raw DEK; zeroes the KEK; throws SlotOpenError(`failure`) when the tag does not verify. */
function unwrapDek(kek: Buffer, nonce: Buffer, aad: Buffer, wrapped: Buffer, failure: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: 16 });
    decipher.setAAD(aad);
    decipher.setAuthTag(wrapped.subarray(DEK_SIZE));
    const raw = decipher.update(wrapped.subarray(0, DEK_SIZE));
    try {
      decipher.final();
    } catch {
      raw.fill(0);
      throw new SlotOpenError(failure);
    }
    return raw;
  } finally {
    kek.fill(0);
  }
}

export class Keyring {
  private dek: DataKey | undefined;

  private constructor(
    private readonly file: string,
    private readonly data: KeyringFile,
  ) {}

  get dekId(): Buffer {
    return Buffer.from(this.data.dekId, 'hex');
  }

  /** The slots present in the file, e.g. ['N', 'R']. */
  get slots(): string[] {
    return Object.keys(this.data.slots).sort();
  }

  get isUnlocked(): boolean {
    return this.dek !== undefined;
  }

  /** The DEK; throws KeyringLockedError while locked. */
  get dataKey(): DataKey {
    if (!this.dek) throw new KeyringLockedError();
    return this.dek;
  }

  /**
   * Creates a keyring with a fresh DEK, slot N (with a fresh K_dir from the
   * source) and slot R. Refuses to replace an existing keyring file. Returns
   * it unlocked.
   */
  static async create(file: string, opts: KeyringCreateOptions): Promise<Keyring> {
    // Checked before K_dir is created: replacing K_dir would lock the existing keyring out.
    if (await access(file).then(() => true, () => false)) {
      throw new KeyringError(`a keyring already exists at ${file}; refusing to replace it`, 'ERR_KEYRING_EXISTS');
    }
    const raw = opts.dataKey ? opts.dataKey.key.export() : randomBytes(DEK_SIZE);
    const dek: DataKey = opts.dataKey ?? { id: randomBytes(DEK_ID_SIZE), key: createSecretKey(raw) };
    const keyring = new Keyring(file, { format: 'mydoc-keyring', version: 1, dekId: dek.id.toString('hex'), slots: {} });
    try {
      keyring.data.slots.N = keyring.sealSlotN(raw, dek.id, await opts.source.create(opts.user), opts.user, opts.source.kind);
      keyring.data.slots.R = await sealSlotR(raw, dek.id, opts);
    } finally {
      raw.fill(0);
    }
    keyring.dek = dek;
    try {
      await writeFileAtomic(file, keyring.serialize(), 0o600, 'create');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new KeyringError(`a keyring already exists at ${file}; refusing to replace it`, 'ERR_KEYRING_EXISTS');
      }
      throw err;
    }
    return keyring;
  }

  /** Reads a keyring file; the result is locked. */
  static async load(file: string): Promise<Keyring> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyringError(`no keyring at ${file}`, 'ERR_KEYRING_MISSING');
      throw new KeyringError(`cannot read keyring ${file}: ${(err as Error).message}`);
    }
    let data: KeyringFile;
    try {
      data = JSON.parse(text) as KeyringFile;
    } catch {
      throw new KeyringError(`keyring ${file} is not valid JSON`);
    }
    if (data?.format !== 'mydoc-keyring' || data.version !== 1 || !/^[0-9a-f]{32}$/.test(data.dekId ?? '') || typeof data.slots !== 'object') {
      throw new KeyringError(`keyring ${file} is malformed or of an unsupported version`);
    }
    return new Keyring(file, data);
  }

  /** Opens slot N with K_dir from the source. */
  async unlockNetwork(source: NetworkSecretSource, user: string): Promise<DataKey> {
    const slot = this.data.slots.N;
    if (!slot) throw new SlotOpenError('this keyring has no network slot (N)');
    if (slot.source !== source.kind) {
      throw new SlotOpenError(`slot N was sealed with the "${slot.source}" network secret source, not "${source.kind}"`);
    }
    let kDir: Buffer;
    try {
      kDir = await source.fetch(user);
    } catch (err) {
      if (err instanceof NetworkSecretUnavailableError) throw err;
      throw new NetworkSecretUnavailableError(`cannot get the network secret of "${user}": ${(err as Error).message}`);
    }
    const kLocal = unb64(slot.kLocal ?? '');
    const nonce = unb64(slot.nonce ?? '');
    const wrapped = unb64(slot.wrapped ?? '');
    if (kLocal.length !== K_LOCAL_SIZE || nonce.length !== 12 || wrapped.length !== DEK_SIZE + 16) {
      kDir.fill(0);
      throw new SlotOpenError('slot N is malformed (wrong field sizes)');
    }
    const kek = slotNKek(kDir, kLocal, this.dekId);
    kDir.fill(0);
    return this.adopt(unwrapDek(kek, nonce, slotNAad(this.dekId, user), wrapped, `slot N did not open for "${user}": the network secret does not match (revoked or replaced)`));
  }

  /** Opens slot R with the recovery private key; returns who the keyring belongs to. */
  async unlockRecovery(recoveryPrivateKey: KeyObject): Promise<RecoveredIdentity> {
    const slot = this.data.slots.R;
    if (!slot) throw new SlotOpenError('this keyring has no recovery slot (R)');
    let payload: { v: number; user: string; pcId: string; dekId: string; dek: string };
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(slot.jwe, recoveryPrivateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] });
      if (protectedHeader.cty !== RECOVERY_CONTENT_TYPE) throw new Error('wrong content type');
      payload = JSON.parse(Buffer.from(plaintext).toString('utf8'));
    } catch {
      throw new SlotOpenError('slot R did not open: this is not the recovery key of this keyring');
    }
    if (payload.v !== 1 || typeof payload.user !== 'string' || typeof payload.dek !== 'string') throw new SlotOpenError('slot R holds an unsupported payload');
    if (payload.dekId !== this.data.dekId) throw new SlotOpenError('slot R belongs to another keyring (DEK id mismatch)');
    const raw = Buffer.from(payload.dek, 'base64url');
    this.adopt(raw);
    return { user: payload.user, pcId: payload.pcId };
  }

  /** The take-out request id slot T belongs to, or undefined when there is no slot T. */
  get takeoutRequestId(): string | undefined {
    return this.data.slots.T?.rid;
  }

  /**
   * Adds slot T (replacing any former one) for take-out request `rid`: the
   * DEK wrapped under K_to and the user's password. Needs the keyring
   * unlocked. Rewrites the file atomically.
   */
  async setTakeoutSlot(opts: { kTo: Buffer; password: string; user: string; rid: string }): Promise<void> {
    if (opts.kTo.length !== TAKEOUT_SECRET_SIZE) throw new KeyringError('K_to must be 32 bytes', 'ERR_KEYRING_TAKEOUT');
    const raw = this.dataKey.key.export();
    const salt = randomBytes(SLOT_T_SALT_SIZE);
    const kek = await slotTKek(opts.kTo, opts.password, salt, SLOT_T_SCRYPT, this.dekId);
    try {
      const { nonce, wrapped } = wrapDek(kek, slotTAad(this.dekId, opts.user, opts.rid), raw);
      const slot: SlotT = { rid: opts.rid, kdf: 'scrypt', ...SLOT_T_SCRYPT, salt: b64(salt), nonce: b64(nonce), wrapped: b64(wrapped) };
      await this.rewrite((slots) => ({ ...slots, T: slot }));
    } finally {
      raw.fill(0);
      kek.fill(0);
    }
  }

  /**
   * Opens slot T with K_to and the user's password. A wrong password, a
   * wrong K_to, another user or another request all fail the same way.
   */
  async unlockTakeout(opts: { kTo: Buffer; password: string; user: string; rid: string }): Promise<DataKey> {
    const slot = this.data.slots.T;
    if (!slot) throw new SlotOpenError('this keyring has no take-out slot (T)');
    if (slot.rid !== opts.rid) throw new SlotOpenError('slot T belongs to another take-out request');
    const salt = unb64(slot.salt ?? '');
    const nonce = unb64(slot.nonce ?? '');
    const wrapped = unb64(slot.wrapped ?? '');
    if (slot.kdf !== 'scrypt' || salt.length !== SLOT_T_SALT_SIZE || nonce.length !== 12 || wrapped.length !== DEK_SIZE + 16 || opts.kTo.length !== TAKEOUT_SECRET_SIZE) {
      throw new SlotOpenError('slot T is malformed (wrong field sizes)');
    }
    if (slot.N !== SLOT_T_SCRYPT.N || slot.r !== SLOT_T_SCRYPT.r || slot.p !== SLOT_T_SCRYPT.p) throw new SlotOpenError('slot T has unsupported scrypt parameters');
    const kek = await slotTKek(opts.kTo, opts.password, salt, slot, this.dekId);
    return this.adopt(unwrapDek(kek, nonce, slotTAad(this.dekId, opts.user, opts.rid), wrapped, 'slot T did not open: wrong password or take-out key'));
  }

  /** Destroys slot T (rewrites the file without it); true when there was one. */
  async removeTakeoutSlot(): Promise<boolean> {
    let had = false;
    await this.rewrite((slots) => {
      had = slots.T !== undefined;
      const { T: _dropped, ...rest } = slots;
      return rest;
    });
    return had;
  }

  /** Rewrites the file from its current content on disk, with `change` applied to the slots. */
  private async rewrite(change: (slots: KeyringFile['slots']) => KeyringFile['slots']): Promise<void> {
    const current = await Keyring.load(this.file);
    if (current.data.dekId !== this.data.dekId) throw new KeyringError(`keyring ${this.file} was replaced (DEK id changed)`, 'ERR_KEYRING_TAKEOUT');
    const data: KeyringFile = { ...current.data, slots: change(current.data.slots) };
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
    this.data.slots = data.slots;
  }

  /** Drops the DEK from memory. */
  lock(): void {
    this.dek = undefined;
  }

  private adopt(raw: Buffer): DataKey {
    if (raw.length !== DEK_SIZE) throw new SlotOpenError('slot held a key of the wrong size');
    this.dek = { id: this.dekId, key: createSecretKey(raw) };
    raw.fill(0);
    return this.dek;
  }

  private sealSlotN(raw: Buffer, dekId: Buffer, kDir: Buffer, user: string, source: string): SlotN {
    const kLocal = randomBytes(K_LOCAL_SIZE);
    const kek = slotNKek(kDir, kLocal, dekId);
    kDir.fill(0);
    const { nonce, wrapped } = wrapDek(kek, slotNAad(dekId, user), raw);
    return { source, kLocal: b64(kLocal), nonce: b64(nonce), wrapped: b64(wrapped) };
  }

  /** The keyring file as a backup keeps it: slots N and R only, never T. */
  backupText(): string {
    const { format, version, dekId, slots } = this.data;
    const copy: KeyringFile = { format, version, dekId, slots: { ...(slots.N ? { N: slots.N } : {}), ...(slots.R ? { R: slots.R } : {}) } };
    return JSON.stringify(copy, null, 2) + '\n';
  }

  private serialize(): string {
    return JSON.stringify(this.data, null, 2) + '\n';
  }

  /** Path of the keyring file. */
  get path(): string {
    return this.file;
  }
}

async function sealSlotR(raw: Buffer, dekId: Buffer, opts: KeyringCreateOptions): Promise<SlotR> {
  const kid = await recoveryKeyId(opts.recoveryPublicKey);
  const payload = Buffer.from(JSON.stringify({ v: 1, user: opts.user, pcId: opts.pcId, dekId: dekId.toString('hex'), dek: raw.toString('base64url') }));
  try {
    const jwe = await new CompactEncrypt(payload).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', kid, cty: RECOVERY_CONTENT_TYPE }).encrypt(opts.recoveryPublicKey);
    return { kid, jwe };
  } finally {
    payload.fill(0);
  }
}

/** RFC 7638 thumbprint of a recovery public key: how slots R name their recipient. */
export async function recoveryKeyId(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey));
}
