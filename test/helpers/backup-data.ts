/** Test helpers for backups: a data folder with users and files, and a comparable dump of a vault tree. */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trustOf } from '../../backup/device-trust.js';
import type { DeviceTrust } from '../../backup/manifest.js';
import { generateP256KeyPair } from '../../crypto/key-files.js';
import { InsecureLocalFileSecretSource } from '../../crypto/network-secret.js';
import { enrolUser, openUserVault } from '../../shares/vault/user-vaults.js';
import type { Vault } from '../../shares/vault/vault.js';
import { patternBytes } from './keys.js';

export interface BackupFixture {
  dataDir: string;
  pcId: string;
  users: string[];
  source: InsecureLocalFileSecretSource;
  recoveryPrivateKey: KeyObject;
  recoveryPublicKey: KeyObject;
  recoveryPrivatePem: string;
  /** The PC's device key pair (also in <dataDir>/keys/ as mydoc init writes it) and its trust. */
  deviceKey: { privateKey: KeyObject; publicKey: KeyObject };
  trust: DeviceTrust;
  /** What runBackup needs besides the target: data folder, PC id, keys. */
  backupOptions: { dataDir: string; pcId: string; deviceKey: { privateKey: KeyObject; publicKey: KeyObject }; recoveryPublicKey: KeyObject };
  /** Opens a user's vault, runs `fn`, closes it. */
  withVault<T>(user: string, fn: (vault: Vault) => Promise<T> | T): Promise<T>;
}

export async function makeDataDir(dataDir: string, opts: { pcId?: string; users?: string[]; recovery?: { privatePem: string; publicPem: string } } = {}): Promise<BackupFixture> {
  const pcId = opts.pcId ?? 'pc-backup';
  const users = opts.users ?? ['alice', 'bob'];
  const pair = opts.recovery ?? generateP256KeyPair();
  const source = new InsecureLocalFileSecretSource(join(dataDir, 'local-directory', 'INSECURE-network-secrets.json'));
  const recoveryPublicKey = createPublicKey(pair.publicPem);
  for (const user of users) await enrolUser({ dataDir, pcId, user, source, recoveryPublicKey });
  const device = generateP256KeyPair();
  await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  await writeFile(join(dataDir, 'keys', 'device-key.pem'), device.privatePem, { mode: 0o600 });
  await writeFile(join(dataDir, 'keys', 'device-public.pem'), device.publicPem);
  await writeFile(join(dataDir, 'keys', 'recovery-public.pem'), pair.publicPem);
  const deviceKey = { privateKey: createPrivateKey(device.privatePem), publicKey: createPublicKey(device.publicPem) };
  return {
    deviceKey,
    trust: await trustOf(deviceKey.publicKey),
    backupOptions: { dataDir, pcId, deviceKey, recoveryPublicKey },
    dataDir,
    pcId,
    users,
    source,
    recoveryPrivateKey: createPrivateKey(pair.privatePem),
    recoveryPublicKey,
    recoveryPrivatePem: pair.privatePem,
    async withVault(user, fn) {
      const { keyring, vault } = await openUserVault(dataDir, pcId, user, source);
      try {
        return await fn(vault);
      } finally {
        vault.close();
        keyring.lock();
      }
    },
  };
}

/** Writes `count` files (sizes vary, one in a subfolder) with Win32 metadata and a dead property. */
export async function populate(vault: Vault, count: number, opts: { marker?: string; seed?: number } = {}): Promise<void> {
  const seed = opts.seed ?? 1;
  await vault.mkdir('/Documents/Reports', { created: 1_600_000_000_000, modified: 1_600_000_100_000 });
  for (let i = 0; i < count; i++) {
    const dir = i % 3 === 0 ? '/Documents/Reports' : '/Desktop';
    const name = `${dir}/${opts.marker ?? 'file'}-${i}.txt`;
    const size = i === 0 ? 0 : (i * 7919) % 200_000;
    const body = opts.marker ? Buffer.concat([Buffer.from(opts.marker), patternBytes(size, seed + i)]) : patternBytes(size, seed + i);
    await vault.write(name, [body]);
    await vault.setMeta(name, { created: 1_500_000_000_000 + i, modified: 1_600_000_000_000 + i * 1000, accessed: 1_700_000_000_000 + i, attributes: 0x20 | (i % 2 ? 0x1 : 0) });
    if (i % 4 === 0) await vault.patchProps(name, [{ ns: 'urn:test', name: 'tag', value: `<t:tag xmlns:t="urn:test">${opts.marker ?? 'v'}${i}</t:tag>` }]);
  }
}

/** Every entry of a vault with its metadata, dead properties and content hash, in a stable order. */
export async function dumpTree(vault: Vault): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    for (const e of vault.list(path)) {
      let content = '';
      if (!e.isDir) {
        const hash = createHash('sha256');
        for await (const piece of (await vault.read(e.path)).stream) hash.update(piece as Buffer);
        content = hash.digest('hex');
      }
      const props = vault.getProps(e.path).map((p) => `${p.ns} ${p.name}=${p.value}`).join(';');
      out.push(`${e.path} dir=${e.isDir} size=${e.size} c=${e.created} m=${e.modified} a=${e.accessed} attr=${e.attributes} props=[${props}] ${content}`);
      if (e.isDir) await walk(e.path);
    }
  };
  await walk('/');
  return out;
}
