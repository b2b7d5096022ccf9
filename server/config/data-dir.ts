/**
 * The data folder as the configuration sees it: the marker `mydoc init`
 * writes, the check that the folder was initialised for this PC, and what
 * the configuration decides about its files (the recovery key in force, the
 * local directory's enrolment). Where each file lives: shares/data-folder.ts.
 */
import { readFile } from 'node:fs/promises';
import { loadPublicKey } from '../../crypto/key-files.js';
import type { LocalEnrolment } from '../../policy/directory/local/enrol.js';
import type { Config } from './config.js';
import { DataFolderError } from './errors.js';
import { dataFolder } from '../../shares/data-folder.js';

export interface DataDirMarker {
  format: 'mydoc-data';
  version: 1;
  pcId: string;
  created: string;
}

/** The recovery public key file in force: the configured one, else the one init generated. */
export function recoveryPublicKeyFile(config: Config): string {
  return config.recovery.publicKey ?? dataFolder(config.dataDir).generatedRecoveryPublic;
}

/** Fails with a clear message unless `mydoc init` ran for this configuration. */
export async function requireInitialised(config: Config): Promise<DataDirMarker> {
  let marker: DataDirMarker;
  try {
    marker = JSON.parse(await readFile(dataFolder(config.dataDir).marker, 'utf8')) as DataDirMarker;
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
