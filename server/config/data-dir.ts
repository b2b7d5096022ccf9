/**
 * The files `mydoc init` puts in the data folder, and the check that a data
 * folder was initialised.
 *
 * <dataDir>/mydoc-data.json          marker: format, PC id, creation time
 * <dataDir>/keys/device-key.pem      the PC's device private key (0600)
 * <dataDir>/keys/device-public.pem
 * <dataDir>/keys/recovery-public.pem recovery public key, when init generated the pair
 * <dataDir>/tls/                     CA certificate, server certificate and key
 * <dataDir>/users/<id>/              one keyring and vault per user
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPublicKey } from '../../crypto/key-files.js';
import type { LocalEnrolment } from '../../policy/directory/enrol-local-user.js';
import type { Config } from './config.js';
import { DataFolderError } from './errors.js';

export const MARKER_FILE = 'mydoc-data.json';

export interface DataDirMarker {
  format: 'mydoc-data';
  version: 1;
  pcId: string;
  created: string;
}

export const dataPaths = (dataDir: string) => ({
  marker: join(dataDir, MARKER_FILE),
  deviceKey: join(dataDir, 'keys', 'device-key.pem'),
  devicePublic: join(dataDir, 'keys', 'device-public.pem'),
  generatedRecoveryPublic: join(dataDir, 'keys', 'recovery-public.pem'),
});

/** The recovery public key file in force: the configured one, else the one init generated. */
export function recoveryPublicKeyFile(config: Config): string {
  return config.recovery.publicKey ?? dataPaths(config.dataDir).generatedRecoveryPublic;
}

/** Fails with a clear message unless `mydoc init` ran for this configuration. */
export async function requireInitialised(config: Config): Promise<DataDirMarker> {
  let marker: DataDirMarker;
  try {
    marker = JSON.parse(await readFile(dataPaths(config.dataDir).marker, 'utf8')) as DataDirMarker;
  } catch {
    throw new DataFolderError('ERR_DATA_DIR_NOT_INITIALISED', `the data folder ${config.dataDir} is not initialised; run "mydoc init --config FILE" first`);
  }
  if (marker.pcId !== config.pcId) {
    throw new DataFolderError('ERR_DATA_DIR_OTHER_PC', `the data folder ${config.dataDir} belongs to PC "${marker.pcId}", but the configuration says pcId "${config.pcId}"`);
  }
  return marker;
}

/** What enrolling a user of the local directory needs, from the configuration. */
export async function localEnrolment(config: Config): Promise<LocalEnrolment> {
  return {
    dataDir: config.dataDir,
    pcId: config.pcId,
    usersFile: config.directory.local.usersFile,
    insecureSecretFile: config.directory.local.insecureSecretFile,
    recoveryPublicKey: await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key'),
  };
}
