/**
 * Where each user's keyring and vault live in the data folder, and how a
 * user is enrolled (keyring created) and unlocked (keyring opened, vault
 * opened).
 *
 * Layout: `<dataDir>/users/<id>/{keyring.json,index.db,objects/,tmp/}` where
 * <id> is a hash of the PC id and the user name, so the folder names do not
 * show who the users are.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyring } from '../../crypto/keyring.js';
import type { NetworkSecretSource } from '../../crypto/network-secret.js';
import { Vault } from './vault.js';
import { dataFolder } from '../data-folder.js';

export const KEYRING_FILE = 'keyring.json';

/** The canonical form of a user name: NFC, lower case (directory names are case-insensitive). */
export function canonicalUser(user: string): string {
  return user.normalize('NFC').toLowerCase();
}

export function userDir(dataDir: string, pcId: string, user: string): string {
  const id = createHash('sha256').update(`mydoc user folder v1\0${pcId}\0${canonicalUser(user)}`).digest('hex').slice(0, 32);
  return join(dataFolder(dataDir).users, id);
}

export interface EnrolOptions {
  dataDir: string;
  pcId: string;
  user: string;
  source: NetworkSecretSource;
  recoveryPublicKey: KeyObject;
}

/** Creates the user's keyring (fresh DEK, slots N and R) and vault. Fails if the user is enrolled already. */
export async function enrolUser(opts: EnrolOptions): Promise<void> {
  const dir = userDir(opts.dataDir, opts.pcId, opts.user);
  const keyring = await Keyring.create(join(dir, KEYRING_FILE), { ...opts, user: canonicalUser(opts.user) });
  try {
    (await Vault.open(dir, keyring.dataKey)).close();
  } finally {
    keyring.lock();
  }
}

export interface UnlockedVault {
  keyring: Keyring;
  vault: Vault;
}

/** Opens a user's keyring through slot N and then the vault. The caller locks and closes both. */
export async function openUserVault(dataDir: string, pcId: string, user: string, source: NetworkSecretSource): Promise<UnlockedVault> {
  const dir = userDir(dataDir, pcId, user);
  const keyring = await Keyring.load(join(dir, KEYRING_FILE));
  const dek = await keyring.unlockNetwork(source, canonicalUser(user));
  try {
    return { keyring, vault: await Vault.open(dir, dek) };
  } catch (err) {
    keyring.lock();
    throw err;
  }
}

/** The user folders present in a data folder (or a copy of one). */
export async function listUserDirs(dataDir: string): Promise<string[]> {
  try {
    const users = dataFolder(dataDir).users;
    const names = await readdir(users, { withFileTypes: true });
    return names.filter((d) => d.isDirectory()).map((d) => join(users, d.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface RecoveredVault extends UnlockedVault {
  user: string;
  pcId: string;
}

/**
 * Opens one user folder with the organisation's recovery private key (slot
 * R), read-only: no directory, no network secret, nothing modified.
 */
export async function openVaultForRecovery(dir: string, recoveryPrivateKey: KeyObject): Promise<RecoveredVault> {
  const keyring = await Keyring.load(join(dir, KEYRING_FILE));
  const who = await keyring.unlockRecovery(recoveryPrivateKey);
  try {
    return { ...who, keyring, vault: await Vault.openReadOnly(dir, keyring.dataKey) };
  } catch (err) {
    keyring.lock();
    throw err;
  }
}
