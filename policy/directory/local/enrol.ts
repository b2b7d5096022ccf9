/**
 * Adds a user to the embedded local directory and enrols their vault: a
 * fresh DEK with slot N (network secret from the INSECURE local-file source)
 * and slot R (recovery public key).
 */
import type { KeyObject } from 'node:crypto';
import { InsecureLocalFileSecretSource } from '../../../crypto/network-secret.js';
import { enrolUser } from '../../../shares/vault/user-vaults.js';
import { DirectoryError } from '../errors.js';
import { LocalUsersFile, validatePassword, validateUserName } from './users-file.js';

export interface LocalEnrolment {
  dataDir: string;
  pcId: string;
  usersFile: string;
  insecureSecretFile: string;
  recoveryPublicKey: KeyObject;
}

export async function addLocalUser(opts: LocalEnrolment, name: string, password: string, role: { admin?: boolean } = {}): Promise<void> {
  validateUserName(name);
  validatePassword(password);
  const directory = new LocalUsersFile(opts.usersFile);
  if (await directory.has(name)) throw new DirectoryError('ERR_USER_EXISTS', `user "${name}" already exists in the local directory`);
  await enrolUser({
    dataDir: opts.dataDir,
    pcId: opts.pcId,
    user: name,
    source: new InsecureLocalFileSecretSource(opts.insecureSecretFile),
    recoveryPublicKey: opts.recoveryPublicKey,
  });
  await directory.add(name, password, role);
}
