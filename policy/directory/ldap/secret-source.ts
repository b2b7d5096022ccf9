/**
 * Slot N's network secret K_dir kept in the company directory: one entry per
 * (PC, user) at a configurable DN template, in an attribute that only this
 * PC's service account can read (an ACL on OpenLDAP, a confidential
 * attribute on AD). It is read at unlock and never written to the local
 * disk; deleting it in the directory revokes the PC.
 */
import { randomBytes } from 'node:crypto';
import { Attribute, Change, InvalidCredentialsError, NoSuchAttributeError, NoSuchObjectError, type Client } from 'ldapts';
import { NetworkSecretUnavailableError } from '../../../crypto/errors.js';
import { NETWORK_SECRET_SIZE, type NetworkSecretSource } from '../../../crypto/network-secret.js';
import { DirectoryUnreachableError } from '../errors.js';
import { bindFailureReason, withBind, type LdapServerSettings } from './connection.js';
import { fillDnTemplate } from './escape.js';

export interface LdapSecretSettings extends LdapServerSettings {
  serviceDn: string;
  servicePassword: string;
  pcId: string;
  /** e.g. `cn={user},ou={pcId},ou=mydoc-keys,dc=corp,dc=example` */
  keyDnTemplate: string;
  keyAttribute: string;
  /** Object classes of a new key entry, e.g. ['mydocPcUserKey']. */
  keyObjectClasses: readonly string[];
}

export class LdapSecretSource implements NetworkSecretSource {
  readonly kind = 'ldap';
  readonly insecure = false;

  constructor(private readonly s: LdapSecretSettings) {}

  keyDn(user: string): string {
    return fillDnTemplate(this.s.keyDnTemplate, { user, pcId: this.s.pcId });
  }

  async fetch(user: string): Promise<Buffer> {
    const dn = this.keyDn(user);
    let value: Buffer | undefined;
    try {
      value = await this.service(async (client) => {
        const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [this.s.keyAttribute], explicitBufferAttributes: [this.s.keyAttribute] });
        const raw = searchEntries[0]?.[this.s.keyAttribute];
        return Buffer.isBuffer(raw) ? raw : Array.isArray(raw) && Buffer.isBuffer(raw[0]) ? raw[0] : undefined;
      });
    } catch (err) {
      if (err instanceof NoSuchObjectError) value = undefined;
      else if (err instanceof DirectoryUnreachableError) throw new NetworkSecretUnavailableError(`the company directory is unreachable: ${err.message}`);
      else if (err instanceof InvalidCredentialsError) throw new NetworkSecretUnavailableError(`the directory refused the service account ${this.s.serviceDn} (${bindFailureReason(err)}): check directory.ldap.servicePasswordFile`);
      else throw new NetworkSecretUnavailableError(`cannot read the network secret of "${user}" from the directory: ${(err as Error).message}`);
    }
    // The service account is bound and the search answered: the directory itself says there is none (or its ACL hides it).
    if (!value || value.length !== NETWORK_SECRET_SIZE) {
      throw new NetworkSecretUnavailableError(`the directory holds no network secret for "${user}" on PC "${this.s.pcId}": the PC was revoked or the user is not enrolled`, 'ERR_NETWORK_SECRET_ABSENT');
    }
    return value;
  }

  async create(user: string): Promise<Buffer> {
    const secret = randomBytes(NETWORK_SECRET_SIZE);
    const dn = this.keyDn(user);
    await this.service(async (client) => {
      try {
        await client.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type: this.s.keyAttribute, values: [secret] }) }));
      } catch (err) {
        if (!(err instanceof NoSuchObjectError)) throw err;
        await this.addEntry(client, dn, secret);
      }
    });
    return secret;
  }

  /**
   * Deletes the user's K_dir (revocation; tests and `mydoc user revoke`): the value first, then
   * the entry, because AD's Recycle Bin keeps a deleted object's attributes (where
   * administrators could read and restore them) but not a value deleted before.
   */
  async delete(user: string): Promise<void> {
    const dn = this.keyDn(user);
    await this.service(async (client) => {
      try {
        await client.modify(dn, new Change({ operation: 'delete', modification: new Attribute({ type: this.s.keyAttribute }) }));
      } catch (err) {
        if (!(err instanceof NoSuchObjectError || err instanceof NoSuchAttributeError)) throw err;
      }
      await client.del(dn).catch((err: unknown) => {
        if (!(err instanceof NoSuchObjectError)) throw err;
      });
    });
  }

  private async addEntry(client: Client, dn: string, secret: Buffer): Promise<void> {
    const [rdn, ...rest] = dn.split(/(?<!\\),/);
    const attributes = [
      new Attribute({ type: 'objectClass', values: [...this.s.keyObjectClasses] }),
      new Attribute({ type: rdn!.slice(0, rdn!.indexOf('=')).trim(), values: [unescapeRdnValue(rdn!.slice(rdn!.indexOf('=') + 1))] }),
      new Attribute({ type: this.s.keyAttribute, values: [secret] }),
    ];
    try {
      await client.add(dn, attributes);
    } catch (err) {
      if (!(err instanceof NoSuchObjectError)) throw err;
      // The PC's container does not exist yet: create it once, then the entry.
      const parent = rest.join(',');
      const parentRdn = rest[0]!;
      await client.add(parent, { objectClass: ['organizationalUnit'], ou: unescapeRdnValue(parentRdn.slice(parentRdn.indexOf('=') + 1)) });
      await client.add(dn, attributes);
    }
  }

  private service<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    return withBind(this.s, this.s.serviceDn, this.s.servicePassword, fn);
  }
}

function unescapeRdnValue(value: string): string {
  return value.replace(/\\([0-9a-fA-F]{2}|.)/g, (_, c: string) => (c.length === 2 ? String.fromCharCode(parseInt(c, 16)) : c));
}
