/**
 * The console's configuration (server/console/config.ts): defaults, paths
 * against the file's folder, the LDAP keys read as the agent reads them,
 * and every mistake a ConfigError naming its dotted key.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConsoleConfig, parseConsoleConfig } from '../server/console/config.js';
import { ConfigError } from '../server/config/errors.js';
import { tempDir } from './helpers/keys.js';

const FILE = '/etc/mydoc/console.yaml';
const MINIMAL = `
dataDir: data
directory:
  kind: local
roles:
  viewer: [mydoc-viewers]
`;
const LDAP = `
dataDir: /srv/console
directory:
  kind: ldap
  ldap:
    urls: [ldaps://dc1.corp.example]
    flavor: openldap
    baseDn: dc=corp,dc=example
    serviceDn: cn=console,dc=corp,dc=example
    servicePasswordFile: console.pw
    caFile: dc-ca.pem
roles:
  viewer: ['cn=viewers,ou=groups,dc=corp,dc=example']
  approver:
    - cn=approvers,ou=groups,dc=corp,dc=example
`;

function assertConfigError(text: string, key: string, messagePart?: string): void {
  assert.throws(
    () => parseConsoleConfig(text, FILE),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
      assert.equal(error.key, key, error.message);
      assert.ok(error.message.startsWith(`config: ${key}: `), error.message);
      if (messagePart) assert.ok(error.message.includes(messagePart), error.message);
      return true;
    },
  );
}

describe('the console configuration', () => {
  it('fills every default for a minimal file, resolves paths against its folder and freezes the result', () => {
    const config = parseConsoleConfig(MINIMAL, FILE);
    assert.deepEqual(config, {
      dataDir: '/etc/mydoc/data',
      listen: { host: '127.0.0.1', port: 9443, linkPort: 9444, hostNames: [] },
      directory: { kind: 'local', local: { usersFile: '/etc/mydoc/data/users.json' }, ldap: null },
      roles: { viewer: ['mydoc-viewers'], approver: [], data: [], sharing: [] },
      store: { kind: 'sqlite', file: '/etc/mydoc/data/console.sqlite' },
      link: { heartbeatSeconds: 60 },
      enrolment: { tokenHours: 24 },
      takeout: { requestExpiryDays: 7 },
      access: { approvals: 0, maxHours: 8 },
      sharing: { defaultDays: 30, maxDays: 90 },
      recovery: { target: null },
    });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.roles.viewer) && Object.isFrozen(config.listen));
  });

  it('reads every key of a full file', () => {
    const config = parseConsoleConfig(
      `${MINIMAL.replace('kind: local', 'kind: local\n  local: { usersFile: admins.json }')}
listen: { host: 0.0.0.0, port: 10443, linkPort: 10444, hostNames: [console.corp.example, 10.0.0.5] }
store: { kind: postgres, postgres: { host: db.corp.example, database: mydoc, user: console, passwordFile: pg.pw } }
link: { heartbeatSeconds: 30 }
enrolment: { tokenHours: 2 }
takeout: { requestExpiryDays: 3 }
access: { approvals: 1, maxHours: 4 }
sharing: { defaultDays: 7, maxDays: 14 }
recovery: { target: { kind: path, path: nas } }
`,
      FILE,
    );
    assert.deepEqual(config.access, { approvals: 1, maxHours: 4 });
    assert.deepEqual(config.sharing, { defaultDays: 7, maxDays: 14 });
    assert.deepEqual(config.recovery.target, { kind: 'path', path: '/etc/mydoc/nas' });
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 10443, linkPort: 10444, hostNames: ['console.corp.example', '10.0.0.5'] });
    assert.equal(config.directory.local.usersFile, '/etc/mydoc/admins.json');
    assert.deepEqual(config.store, { kind: 'postgres', host: 'db.corp.example', port: 5432, database: 'mydoc', user: 'console', passwordFile: '/etc/mydoc/pg.pw', ssl: 'verify-full', caFile: null });
    assert.equal(config.link.heartbeatSeconds, 30);
    assert.equal(config.enrolment.tokenHours, 2);
    assert.equal(config.takeout.requestExpiryDays, 3);
  });

  it('refuses access, sharing and recovery values out of range, naming the key', () => {
    assertConfigError(`${MINIMAL}access: { approvals: 2 }\n`, 'access.approvals');
    assertConfigError(`${MINIMAL}access: { maxHours: 9 }\n`, 'access.maxHours');
    assertConfigError(`${MINIMAL}sharing: { defaultDays: 40, maxDays: 30 }\n`, 'sharing.defaultDays', 'sharing.maxDays (40 > 30)');
    assertConfigError(`${MINIMAL}sharing: { maxDays: 0 }\n`, 'sharing.maxDays');
    assertConfigError(`${MINIMAL}recovery: { target: { kind: ftp } }\n`, 'recovery.target.kind');
    assertConfigError(`${MINIMAL}recovery: { target: { kind: path, url: //nas/x } }\n`, 'recovery.target.url', 'recovery.target.kind is "smb"');
    assert.equal(parseConsoleConfig(`${MINIMAL}sharing: { maxDays: 10 }\n`, FILE).sharing.defaultDays, 10);
  });

  it('store.postgres.ssl: verify-full by default off this machine, disable on loopback; caFile with verify-full', () => {
    const store = (pg: string) => parseConsoleConfig(`${MINIMAL}store: { kind: postgres, postgres: { database: d, user: u, ${pg} } }\n`, FILE).store as { ssl: string; caFile: string | null };
    assert.deepEqual([store('host: db.corp.example').ssl, store('host: 10.0.0.7').ssl], ['verify-full', 'verify-full']);
    assert.deepEqual([store('host: 127.0.0.1').ssl, store('host: localhost').ssl, store("host: '::1'").ssl], ['disable', 'disable', 'disable']);
    assert.equal(store('host: 127.0.0.1, ssl: require').ssl, 'require');
    assert.deepEqual(store('host: db.corp.example, caFile: pg-ca.pem'), { ...store('host: db.corp.example'), caFile: '/etc/mydoc/pg-ca.pem' });
    assert.equal(store('host: localhost, ssl: verify-full, caFile: /x/ca.pem').caFile, '/x/ca.pem');
  });

  it("reads directory.ldap with the agent's connection keys and defaults", () => {
    const config = parseConsoleConfig(LDAP, FILE);
    assert.deepEqual(config.directory.ldap, {
      urls: ['ldaps://dc1.corp.example'],
      flavor: 'openldap',
      baseDn: 'dc=corp,dc=example',
      userBaseDn: 'dc=corp,dc=example',
      serviceDn: 'cn=console,dc=corp,dc=example',
      servicePasswordFile: '/etc/mydoc/console.pw',
      caFile: '/etc/mydoc/dc-ca.pem',
      tlsServerName: null,
      insecureSkipVerify: false,
      timeoutSeconds: 3,
    });
    assert.deepEqual(config.roles.approver, ['cn=approvers,ou=groups,dc=corp,dc=example']);
  });

  it('refuses unknown keys at every level, naming the key', () => {
    assertConfigError(`${MINIMAL}pcId: pc-1\n`, 'pcId', 'unknown key');
    assertConfigError(`${MINIMAL}listen: { prot: 1 }\n`, 'listen.prot', 'unknown key');
    assertConfigError(MINIMAL.replace('viewer:', 'viewers:'), 'roles.viewers', 'allowed here: viewer, approver, data, sharing');
    assertConfigError(`${MINIMAL}store: { kind: sqlite, file: x.db }\n`, 'store.file', 'unknown key');
    assertConfigError(`${MINIMAL}link: { heartbeat: 5 }\n`, 'link.heartbeat', 'unknown key');
    // What only the agent reads in directory.ldap is not the console's.
    assertConfigError(LDAP.replace('caFile: dc-ca.pem', 'caFile: dc-ca.pem\n    keyAttribute: mydocNetworkSecret'), 'directory.ldap.keyAttribute', 'unknown key');
    assertConfigError(LDAP.replace('caFile: dc-ca.pem', 'caFile: dc-ca.pem\n    adminsGroupDn: cn=admins'), 'directory.ldap.adminsGroupDn', 'unknown key');
  });

  it('refuses wrong values, naming the key', () => {
    assertConfigError(MINIMAL.replace('dataDir: data\n', ''), 'dataDir', 'is required');
    assertConfigError(`${MINIMAL}listen: { port: 70000 }\n`, 'listen.port', 'from 1 to 65535');
    assertConfigError(`${MINIMAL}listen: { port: 9000, linkPort: 9000 }\n`, 'listen.linkPort', 'must differ from listen.port');
    assertConfigError(`${MINIMAL}listen: { hostNames: [bad_name] }\n`, 'listen.hostNames.0');
    assertConfigError(MINIMAL.replace('kind: local', 'kind: ad'), 'directory.kind', 'local, ldap');
    assertConfigError(MINIMAL.replace('kind: local', 'kind: ldap'), 'directory.ldap', 'is required when directory.kind is "ldap"');
    assertConfigError(LDAP.replace('    caFile: dc-ca.pem\n', ''), 'directory.ldap.caFile', 'insecureSkipVerify');
    assertConfigError(LDAP.replace('flavor: openldap', 'flavor: novell'), 'directory.ldap.flavor');
    assertConfigError(MINIMAL.replace('  viewer: [mydoc-viewers]\n', '  viewer: []\n'), 'roles', 'no administrator can log in');
    assertConfigError(MINIMAL.replace('[mydoc-viewers]', 'mydoc-viewers'), 'roles.viewer', 'must be a list');
    assertConfigError(`${MINIMAL}store: { kind: mysql }\n`, 'store.kind', 'sqlite, postgres');
    assertConfigError(`${MINIMAL}store: { kind: postgres }\n`, 'store.postgres', 'is required');
    assertConfigError(`${MINIMAL}store: { kind: postgres, postgres: { host: db, user: u } }\n`, 'store.postgres.database', 'is required');
    assertConfigError(`${MINIMAL}store: { kind: sqlite, postgres: { host: db } }\n`, 'store.postgres', 'only allowed');
    assertConfigError(`${MINIMAL}store: { kind: postgres, postgres: { host: db, database: d, user: u, ssl: prefer } }\n`, 'store.postgres.ssl', 'disable, require, verify-full');
    assertConfigError(`${MINIMAL}store: { kind: postgres, postgres: { host: db, database: d, user: u, ssl: require, caFile: ca.pem } }\n`, 'store.postgres.caFile', 'only allowed when store.postgres.ssl is "verify-full"');
    assertConfigError(`${MINIMAL}store: { kind: postgres, postgres: { host: 127.0.0.1, database: d, user: u, caFile: ca.pem } }\n`, 'store.postgres.caFile', '(it is "disable")');
    assertConfigError(`${MINIMAL}link: { heartbeatSeconds: 0 }\n`, 'link.heartbeatSeconds', 'from 1 to 3600');
    assertConfigError(`${MINIMAL}enrolment: { tokenHours: 1000 }\n`, 'enrolment.tokenHours');
    assertConfigError(`${MINIMAL}takeout: { requestExpiryDays: -1 }\n`, 'takeout.requestExpiryDays');
    assertConfigError('dataDir: [x\n', '(file)', 'console.yaml line ');
    assertConfigError('- a list\n', '(file)', 'must contain a YAML mapping');
  });

  it('loadConsoleConfig reads the file and names a missing one', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = join(dir, 'console.yaml');
      await writeFile(file, MINIMAL);
      assert.equal((await loadConsoleConfig(file)).dataDir, join(dir, 'data'));
      await assert.rejects(loadConsoleConfig(join(dir, 'nope.yaml')), (err: ConfigError) => err.key === '(file)' && /nope\.yaml does not exist/.test(err.message));
    } finally {
      await cleanup();
    }
  });
});
