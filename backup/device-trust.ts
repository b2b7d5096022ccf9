/**
 * Which device key a reader of a backup trusts to have signed a PC's
 * manifests, and the newest snapshot it has seen of that PC.
 *
 * The PC writes its device public key to `<pcId>/device-public.pem` on the
 * target, but a NAS writer could replace that file and sign manifests of
 * their own. So the key on the target is trusted only when
 * - it is pinned: `--device-key FILE` (the PC's `keys/device-public.pem`)
 *   or `--device-key THUMBPRINT` (what `mydoc init` printed), or
 * - this machine trusted that same key before (trust on first use, recorded
 *   in a trust file on this machine, never on the target); a different key
 *   later is refused.
 * The trust file also records the newest snapshot seen of each PC, so that a
 * rollback (newest snapshots removed, an older manifest put back) is reported.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../crypto/atomic-file.js';
import { keyThumbprint } from '../crypto/device-signature.js';
import { BackupError } from './errors.js';
import { devicePublicPath, type DeviceTrust } from './manifest.js';
import type { BackupTarget } from './target.js';

/** A pinned device key: the public key itself, or its RFC 7638 thumbprint. */
export type DevicePin = { key: KeyObject } | { thumbprint: string };

interface TrustRecord {
  deviceKey?: string;
  newestSnapshot?: string;
}

interface TrustFile {
  format: 'mydoc-backup-trust';
  version: 1;
  pcs: Record<string, TrustRecord>;
}

/** The trust file of this machine: per PC, the device key trusted and the newest snapshot seen. */
export class TrustStore {
  private constructor(
    private readonly file: string,
    private readonly data: TrustFile,
  ) {}

  static async load(file: string): Promise<TrustStore> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new TrustStore(file, { format: 'mydoc-backup-trust', version: 1, pcs: {} });
      throw new BackupError('ERR_BACKUP_DEVICE_KEY', `cannot read the backup trust file ${file}: ${(err as Error).message}`);
    }
    const data = JSON.parse(text) as TrustFile;
    if (data?.format !== 'mydoc-backup-trust' || data.version !== 1 || typeof data.pcs !== 'object') {
      throw new BackupError('ERR_BACKUP_DEVICE_KEY', `the backup trust file ${file} is malformed`);
    }
    return new TrustStore(file, data);
  }

  get(pcId: string): TrustRecord {
    return this.data.pcs[pcId] ?? {};
  }

  /** Records the device key, and the newest snapshot seen (never moved back). */
  async record(pcId: string, update: TrustRecord): Promise<void> {
    const old = this.get(pcId);
    const next: TrustRecord = { ...old, ...(update.deviceKey ? { deviceKey: update.deviceKey } : {}) };
    if (update.newestSnapshot && (!old.newestSnapshot || update.newestSnapshot > old.newestSnapshot)) next.newestSnapshot = update.newestSnapshot;
    if (next.deviceKey === old.deviceKey && next.newestSnapshot === old.newestSnapshot) return;
    this.data.pcs[pcId] = next;
    await writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n', 0o600);
  }
}

/** The device public key a PC left on the target, or undefined. */
async function keyOnTarget(target: BackupTarget, pcId: string): Promise<KeyObject | undefined> {
  let pem: Buffer;
  try {
    pem = await target.readFile(devicePublicPath(pcId));
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_TARGET_NOT_FOUND') return undefined;
    throw err;
  }
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return key;
  } catch {
    // reported below
  }
  throw new BackupError('ERR_BACKUP_DEVICE_KEY', `${devicePublicPath(pcId)} on the ${target.description} is not a P-256 public key`);
}

export async function trustOf(key: KeyObject): Promise<DeviceTrust> {
  return { key, thumbprint: await keyThumbprint(key) };
}

/**
 * The device key to check PC `pcId`'s manifests with. `notices` are
 * sentences for the user (a first use, a key on the target that differs
 * from the pinned one). Records the key in `store`.
 */
export async function trustDevice(target: BackupTarget, pcId: string, opts: { pin?: DevicePin | undefined; store: TrustStore }): Promise<{ trust: DeviceTrust; notices: string[] }> {
  const notices: string[] = [];
  const onTarget = await keyOnTarget(target, pcId);
  const targetTrust = onTarget && (await trustOf(onTarget));
  const where = `${devicePublicPath(pcId)} on the ${target.description}`;
  let trust: DeviceTrust;
  if (opts.pin && 'key' in opts.pin) {
    trust = await trustOf(opts.pin.key);
    if (targetTrust && targetTrust.thumbprint !== trust.thumbprint) notices.push(`the device key in ${where} (${targetTrust.thumbprint}) is not the pinned one (${trust.thumbprint}); only manifests the pinned key signed are accepted`);
  } else {
    const expected = opts.pin?.thumbprint ?? opts.store.get(pcId).deviceKey;
    if (!targetTrust) {
      throw new BackupError('ERR_BACKUP_DEVICE_KEY', `there is no device key of PC ${pcId} (${where}); pass --device-key FILE with the PC's keys/device-public.pem`);
    }
    if (expected !== undefined && targetTrust.thumbprint !== expected) {
      const from = opts.pin ? 'the pinned thumbprint' : 'the one this machine trusted before';
      throw new BackupError('ERR_BACKUP_DEVICE_KEY', `the device key of PC ${pcId} in ${where} (${targetTrust.thumbprint}) is not ${from} (${expected}): someone replaced it; refusing its manifests (if the PC's key really changed, pass --device-key FILE)`);
    }
    if (expected === undefined) notices.push(`first use: trusting the device key ${targetTrust.thumbprint} of PC ${pcId} found on the target; compare it with the thumbprint "mydoc init" printed on that PC, or pin it with --device-key`);
    trust = targetTrust;
  }
  await opts.store.record(pcId, { deviceKey: trust.thumbprint });
  return { trust, notices };
}
