/**
 * The layout of the console's data folder (`dataDir` of its configuration):
 * the one module that knows where each part of it lives.
 *
 * <dataDir>/console-data.json      marker: format, creation time (`mydoc console init`)
 * <dataDir>/console.sqlite         the embedded store (store.kind sqlite)
 * <dataDir>/tls/ca.pem             the console's CA certificate (agents pin it: console.caFile)
 * <dataDir>/tls/cert.pem, key.pem  the TLS certificate and key of both ports
 * <dataDir>/issuer-private.pem     the take-out issuer private key (0600; never on a PC)
 * <dataDir>/issuer-public.pem      its public half (agents list it in takeout.issuerPublicKeys)
 * <dataDir>/users.json             the local directory's users, unless directory.local.usersFile names another
 * <dataDir>/audit/audit.log        the console's hash-chained audit trail
 * <dataDir>/run/admin.sock         the admin socket of the running console (0600)
 */
import { join } from 'node:path';

export function consoleFolder(dataDir: string) {
  return {
    marker: join(dataDir, 'console-data.json'),
    sqliteFile: join(dataDir, 'console.sqlite'),
    tls: {
      caFile: join(dataDir, 'tls', 'ca.pem'),
      certFile: join(dataDir, 'tls', 'cert.pem'),
      keyFile: join(dataDir, 'tls', 'key.pem'),
    },
    issuerPrivateKey: join(dataDir, 'issuer-private.pem'),
    issuerPublicKey: join(dataDir, 'issuer-public.pem'),
    usersFile: join(dataDir, 'users.json'),
    auditLog: join(dataDir, 'audit', 'audit.log'),
    run: join(dataDir, 'run'),
    adminSocket: join(dataDir, 'run', 'admin.sock'),
  };
}
