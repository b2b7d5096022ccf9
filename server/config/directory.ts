/** Builds the directory the configuration names, reading its secrets from their files. */
import { readFile } from 'node:fs/promises';
import type { Directory } from '../../policy/directory/directory.js';
import { LdapDirectory } from '../../policy/directory/ldap/directory.js';
import { LocalDirectory } from '../../policy/directory/local/directory.js';
import type { Config } from './config.js';
import type { LdapConnectionConfig } from './ldap-config.js';
import { ConfiguredFileError } from './errors.js';

/** A secret file's content without its final newline; a clear error naming `what` when it cannot be read. */
export async function readSecretFile(file: string, what: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfiguredFileError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The connection settings of an LDAP directory (agent or console), its service password and CA read from their files. */
export async function ldapConnection(ldap: LdapConnectionConfig) {
  return {
    urls: ldap.urls,
    flavor: ldap.flavor,
    baseDn: ldap.baseDn,
    userBaseDn: ldap.userBaseDn,
    serviceDn: ldap.serviceDn,
    servicePassword: await readSecretFile(ldap.servicePasswordFile, 'service account password file (directory.ldap.servicePasswordFile)'),
    caPem: ldap.caFile ? await readSecretFile(ldap.caFile, 'directory CA file (directory.ldap.caFile)') : undefined,
    tlsServerName: ldap.tlsServerName ?? undefined,
    insecureSkipVerify: ldap.insecureSkipVerify,
    timeoutMs: Math.round(ldap.timeoutSeconds * 1000),
  };
}

export async function buildDirectory(config: Config): Promise<Directory> {
  const ldap = config.directory.ldap;
  if (config.directory.kind === 'local' || !ldap) {
    return new LocalDirectory(config.directory.local.usersFile, config.directory.local.insecureSecretFile);
  }
  return new LdapDirectory({
    ...(await ldapConnection(ldap)),
    adminsGroupDn: ldap.adminsGroupDn ?? undefined,
    pcId: config.pcId,
    keyDnTemplate: ldap.keyDnTemplate,
    keyAttribute: ldap.keyAttribute,
    keyObjectClasses: ldap.keyObjectClasses,
  });
}
