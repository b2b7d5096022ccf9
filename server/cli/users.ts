/**
 * `mydoc user add` (the embedded local directory) and `mydoc user enroll`
 * (a company directory): a user and their vault on this PC. Each enrolment,
 * and each refused one, is written to the audit log.
 */
import { userInfo } from 'node:os';
import { loadPublicKey } from '../../crypto/key-files.js';
import { addLocalUser } from '../../policy/directory/local/enrol.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import { enrolUser } from '../../shares/vault/user-vaults.js';
import { recordAuditEvent } from '../agent/admin-socket.js';
import { localEnrolment, recoveryPublicKeyFile, requireInitialised } from '../config/data-dir.js';
import { buildDirectory } from '../config/directory.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { configFrom, configOption, passwordStdinOption, readPassword } from './inputs.js';

/** The actor of a CLI command in the audit log: the local account that ran it. */
function localActor(): string {
  return `local:${userInfo().username}`;
}

export const userCommands = [
  command({
    name: 'user enroll',
    positionals: ['NAME'],
    options: { config: configOption },
    summary:
      "With a company directory (directory.kind: ldap): create the user's network secret in the directory and their vault on this PC (otherwise done at their first online login).",
    async run({ values, positionals }, io) {
      const config = await configFrom(values.config, io);
      if (config.directory.kind !== 'ldap') throw new CliError('"mydoc user enroll" is for a company directory (directory.kind: ldap); use "mydoc user add" with the local directory');
      await requireInitialised(config);
      const directory = await buildDirectory(config);
      const user = normalizeUserName(positionals[0]!);
      const event = { actor: localActor(), action: 'user.enrol', target: user } as const;
      try {
        await enrolUser({ dataDir: config.dataDir, pcId: config.pcId, user, source: directory.secrets, recoveryPublicKey: await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key') });
      } catch (err) {
        await recordAuditEvent(config.dataDir, { ...event, decision: 'deny', reason: `mydoc user enroll: ${(err as Error).message}` });
        throw err;
      }
      await recordAuditEvent(config.dataDir, { ...event, decision: 'allow', reason: 'mydoc user enroll' });
      io.stdout(`enrolled "${user}": network secret created in the directory, vault created on this PC\n`);
      return 0;
    },
  }),
  command({
    name: 'user add',
    positionals: ['NAME'],
    options: {
      'password-stdin': passwordStdinOption,
      admin: { type: 'boolean', description: 'make the user a mydoc administrator (take-out approvals)' },
      config: configOption,
    },
    summary: 'Add a user to the embedded local directory (directory.kind: local) and create their encrypted vault. The password is read from standard input.',
    async run({ values, positionals }, io) {
      const name = positionals[0]!;
      const config = await configFrom(values.config, io);
      if (config.directory.kind !== 'local') throw new CliError(`"mydoc user add" is for the local directory; directory.kind is "${config.directory.kind}"`);
      await requireInitialised(config);
      const password = await readPassword(io);
      const event = { actor: localActor(), action: 'user.enrol', target: name } as const;
      try {
        await addLocalUser(await localEnrolment(config), name, password, { admin: values.admin });
      } catch (err) {
        await recordAuditEvent(config.dataDir, { ...event, decision: 'deny', reason: `mydoc user add: ${(err as Error).message}` });
        throw err;
      }
      await recordAuditEvent(config.dataDir, { ...event, decision: 'allow', reason: `mydoc user add${values.admin ? ' --admin' : ''} (local directory)` });
      io.stdout(`added ${values.admin ? 'administrator' : 'user'} "${name}" and created their vault (Documents, Desktop, Profile)\n`);
      io.stderr(`warning: the local directory keeps network secrets in ${config.directory.local.insecureSecretFile}: INSECURE, for demos and tests only\n`);
      return 0;
    },
  }),
];
