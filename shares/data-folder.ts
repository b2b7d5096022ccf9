/**
 * The layout of the data folder (`dataDir` of the configuration): the one
 * module that knows where each part of it lives. It sits in shares/, the
 * lowest layer that keeps files there, so every layer above can use it.
 *
 * <dataDir>/mydoc-data.json                        marker: format, PC id, creation time (`mydoc init`)
 * <dataDir>/keys/device-key.pem                    the PC's device private key (0600)
 * <dataDir>/keys/device-public.pem
 * <dataDir>/keys/recovery-public.pem               recovery public key, when init generated the pair
 * <dataDir>/tls/{ca-cert,server-cert,server-key}.pem  the TLS files, unless tls.* names others
 * <dataDir>/local-directory/users.json             the local directory, unless directory.local names
 * <dataDir>/local-directory/INSECURE-network-secrets.json  other files
 * <dataDir>/users/<id>/                            one keyring and vault per user (<id>: shares/vault/user-vaults.ts)
 * <dataDir>/takeout/                               take-out requests and keys
 * <dataDir>/audit/audit.log                        the audit log
 * <dataDir>/backup-state.json                      the last complete backup
 * <dataDir>/backup-trust.json                      device keys pinned for backups read with --from
 * <dataDir>/console-enrolment.json                 the SHA-256 of the enrolment token the console accepted
 * <dataDir>/console-key.pem                        the console's issuer public key, pinned at its first welcome (0600)
 * <dataDir>/run/                                   the admin socket (admin.sock), backup and restore staging
 */
import { join } from 'node:path';

export function dataFolder(dataDir: string) {
  return {
    marker: join(dataDir, 'mydoc-data.json'),
    deviceKey: join(dataDir, 'keys', 'device-key.pem'),
    devicePublic: join(dataDir, 'keys', 'device-public.pem'),
    generatedRecoveryPublic: join(dataDir, 'keys', 'recovery-public.pem'),
    tls: {
      certFile: join(dataDir, 'tls', 'server-cert.pem'),
      keyFile: join(dataDir, 'tls', 'server-key.pem'),
      caFile: join(dataDir, 'tls', 'ca-cert.pem'),
    },
    localDirectory: {
      usersFile: join(dataDir, 'local-directory', 'users.json'),
      insecureSecretFile: join(dataDir, 'local-directory', 'INSECURE-network-secrets.json'),
    },
    users: join(dataDir, 'users'),
    takeout: join(dataDir, 'takeout'),
    auditLog: join(dataDir, 'audit', 'audit.log'),
    backupState: join(dataDir, 'backup-state.json'),
    consoleEnrolment: join(dataDir, 'console-enrolment.json'),
    consoleKey: join(dataDir, 'console-key.pem'),
    backupTrust: join(dataDir, 'backup-trust.json'),
    run: join(dataDir, 'run'),
    adminSocket: join(dataDir, 'run', 'admin.sock'),
  };
}
