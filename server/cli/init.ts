/**
 * `mydoc init`: creates the data folder, the PC's device key pair, a CA and
 * a TLS server certificate, and (when no recovery public key is configured)
 * a recovery key pair whose private half goes to a file that must leave the
 * PC.
 *
 * Security considerations: refuses to run twice on one data folder (that
 * would replace the device key and the CA the guest trusts); the recovery
 * private key is refused inside the data folder and never overwrites a file;
 * every file is written 0600, the public ones too (the data folder is 0700,
 * so 0644 would add no reader; the administrator copies the CA certificate
 * to the guest as the service's user or root).
 */
import { access, mkdir, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { relative, resolve, isAbsolute } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { keyThumbprint } from '../../crypto/device-signature.js';
import { generateP256KeyPair, loadPublicKey } from '../../crypto/key-files.js';
import type { Config } from '../config/config.js';
import type { DataDirMarker } from '../config/data-dir.js';
import { dataFolder } from '../../shares/data-folder.js';
import { CliError } from './errors.js';
import { createTlsMaterial } from '../http/tls.js';
import { command } from './command.js';
import { configFrom, configOption } from './inputs.js';

export interface InitReport {
  dataDir: string;
  caFile: string;
  certFile: string;
  /** Where the generated recovery private key was written, if one was generated. */
  recoveryKeyOut: string | undefined;
  recoveryPublicKey: string;
  /** RFC 7638 thumbprint of the device public key, which signs the backup manifests. */
  deviceKeyThumbprint: string;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

function isInside(file: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(file));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export async function initDataDir(config: Config, opts: { recoveryKeyOut?: string | undefined }): Promise<InitReport> {
  const paths = dataFolder(config.dataDir);
  if (await exists(paths.marker)) {
    throw new CliError(`the data folder ${config.dataDir} is already initialised (found ${paths.marker}); refusing to replace its keys`);
  }
  let recoveryPublicFile = config.recovery.publicKey;
  if (recoveryPublicFile) {
    await loadPublicKey(recoveryPublicFile, 'recovery public key (recovery.publicKey)');
    if (opts.recoveryKeyOut) throw new CliError('--recovery-key-out is only for generating a recovery key pair, but recovery.publicKey is configured');
  } else {
    if (!opts.recoveryKeyOut) {
      throw new CliError('recovery.publicKey is not configured: pass --recovery-key-out FILE to generate a recovery key pair (its private half must then leave this PC)');
    }
    if (isInside(opts.recoveryKeyOut, config.dataDir)) {
      throw new CliError(`--recovery-key-out ${opts.recoveryKeyOut} is inside the data folder; the recovery private key must not be stored with the data it opens`);
    }
    if (await exists(opts.recoveryKeyOut)) throw new CliError(`${opts.recoveryKeyOut} already exists; refusing to overwrite it`);
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  const device = generateP256KeyPair();
  await writeFileAtomic(paths.deviceKey, device.privatePem, 0o600);
  await writeFileAtomic(paths.devicePublic, device.publicPem, 0o600);

  const hostNames = config.listen.hostNames.filter((h) => isIP(h) === 0);
  const ipAddresses = config.listen.hostNames.filter((h) => isIP(h) !== 0);
  const tls = await createTlsMaterial({ hostNames, ipAddresses, commonName: config.pcId });
  await writeFileAtomic(config.tls.caFile, tls.caCertPem, 0o600);
  await writeFileAtomic(config.tls.certFile, tls.certPem, 0o600);
  await writeFileAtomic(config.tls.keyFile, tls.keyPem, 0o600);

  if (!recoveryPublicFile) {
    const recovery = generateP256KeyPair();
    await writeFileAtomic(opts.recoveryKeyOut!, recovery.privatePem, 0o600, 'create').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(err.code === 'EEXIST' ? `${opts.recoveryKeyOut} already exists; refusing to overwrite it` : `cannot write ${opts.recoveryKeyOut}: ${err.message}`);
    });
    try {
      await writeFileAtomic(paths.generatedRecoveryPublic, recovery.publicPem, 0o600);
    } catch (err) {
      await rm(opts.recoveryKeyOut!, { force: true });
      throw err;
    }
    recoveryPublicFile = paths.generatedRecoveryPublic;
  }

  const marker: DataDirMarker = { format: 'mydoc-data', version: 1, pcId: config.pcId, created: new Date().toISOString() };
  await writeFileAtomic(paths.marker, JSON.stringify(marker, null, 2) + '\n', 0o600);
  return {
    dataDir: config.dataDir,
    caFile: config.tls.caFile,
    certFile: config.tls.certFile,
    recoveryKeyOut: config.recovery.publicKey ? undefined : resolve(opts.recoveryKeyOut!),
    recoveryPublicKey: recoveryPublicFile,
    deviceKeyThumbprint: await keyThumbprint(createPublicKey(device.publicPem)),
  };
}

export const initCommand = command({
  name: 'init',
  options: {
    config: configOption,
    'recovery-key-out': {
      type: 'path',
      description: 'where to write the generated recovery private key, when recovery.publicKey is not configured (it must leave the PC)',
    },
  },
  summary:
    'Create the data folder: device key pair, CA and TLS certificate, and, when recovery.publicKey is not configured, a recovery key pair whose private half is written to --recovery-key-out (it must leave the PC).',
  async run({ values }, io) {
    const config = await configFrom(values.config, io);
    const report = await initDataDir(config, { recoveryKeyOut: values['recovery-key-out'] });
    io.stdout(`initialised ${report.dataDir} for PC "${config.pcId}"\n`);
    io.stdout(`  CA certificate (install in the Windows guest's LocalMachine\\Root): ${report.caFile}\n`);
    io.stdout(`  TLS server certificate: ${report.certFile}\n`);
    io.stdout(`  recovery public key: ${report.recoveryPublicKey}\n`);
    io.stdout(`  device key thumbprint: ${report.deviceKeyThumbprint} (record it with the recovery key: "mydoc restore" and "mydoc recover --device-key ${report.deviceKeyThumbprint}" accept only backups this PC signed)\n`);
    if (report.recoveryKeyOut) {
      io.stderr(
        [
          '',
          '!!! ====================================================================== !!!',
          `!!! RECOVERY PRIVATE KEY WRITTEN TO ${report.recoveryKeyOut}`,
          '!!! It opens every vault of this PC. Move it OFF this PC now, into the',
          "!!! organisation's safe keeping, and delete it here. Whoever holds it and a",
          '!!! copy of the data can read everything. Without it, a lost PC cannot be recovered.',
          '!!! ====================================================================== !!!',
          '',
        ].join('\n') + '\n',
      );
    }
    return 0;
  },
});
