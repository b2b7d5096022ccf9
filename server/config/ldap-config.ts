/**
 * The `ldap` section of a directory, read the same way by the agent's
 * configuration (config.ts, `directory.ldap`) and the console's
 * (server/console/config.ts, `directory.ldap`): the servers, the flavour,
 * where accounts are searched, the service account and the TLS checks.
 * What only the agent needs (its network secrets' DNs, the admins group)
 * is read by the agent's module on top of this.
 */
import { ConfigError } from './errors.js';
import { describe, oneOf, readBoolean, readNumber, readPath, readString, readStringList, required, type Mapping } from './yaml-reader.js';

/** How to reach the directory and find its accounts. */
export interface LdapConnectionConfig {
  readonly urls: readonly string[];
  readonly flavor: 'ad' | 'openldap';
  readonly baseDn: string;
  readonly userBaseDn: string;
  readonly serviceDn: string;
  readonly servicePasswordFile: string;
  readonly caFile: string | null;
  readonly tlsServerName: string | null;
  readonly insecureSkipVerify: boolean;
  readonly timeoutSeconds: number;
}

/** The keys `readLdapConnection` reads (a section allows these and its own). */
export const LDAP_CONNECTION_KEYS = ['urls', 'flavor', 'baseDn', 'userBaseDn', 'serviceDn', 'servicePasswordFile', 'caFile', 'tlsServerName', 'insecureSkipVerify', 'timeoutSeconds'] as const;

const LDAP_FLAVORS = ['ad', 'openldap'] as const;

/** Reads the connection keys of the section `key` (e.g. `directory.ldap`); paths are resolved against `baseDir`. */
export function readLdapConnection(ldap: Mapping, key: string, baseDir: string): LdapConnectionConfig {
  const urls = readStringList(ldap, key, 'urls');
  if (urls === undefined || urls.length === 0) throw new ConfigError(`${key}.urls`, 'is required: a list of ldaps:// or ldap:// URLs, tried in order');
  urls.forEach((url, i) => {
    if (!/^ldaps?:\/\/[^/\s]+\/?$/i.test(url)) throw new ConfigError(`${key}.urls.${i}`, `must be ldaps://host[:port] or ldap://host[:port] (got ${describe(url)})`);
  });
  const baseDn = required(readString(ldap, key, 'baseDn'), `${key}.baseDn`);
  const insecureSkipVerify = readBoolean(ldap, key, 'insecureSkipVerify') ?? false;
  const caFile = readPath(ldap, key, 'caFile', baseDir) ?? null;
  if (!caFile && !insecureSkipVerify) throw new ConfigError(`${key}.caFile`, 'is required to verify the directory\'s certificate (or set insecureSkipVerify: true, which is logged loudly)');
  return {
    urls,
    flavor: oneOf(required(readString(ldap, key, 'flavor'), `${key}.flavor`), LDAP_FLAVORS, `${key}.flavor`),
    baseDn,
    userBaseDn: readString(ldap, key, 'userBaseDn') ?? baseDn,
    serviceDn: required(readString(ldap, key, 'serviceDn'), `${key}.serviceDn`),
    servicePasswordFile: required(readPath(ldap, key, 'servicePasswordFile', baseDir), `${key}.servicePasswordFile`),
    caFile,
    tlsServerName: readString(ldap, key, 'tlsServerName') ?? null,
    insecureSkipVerify,
    timeoutSeconds: readNumber(ldap, key, 'timeoutSeconds', 0.1, 60) ?? 3,
  };
}
