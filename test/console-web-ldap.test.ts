// The console's administrators against a real OpenLDAP slapd: the console's
// directory built from its configuration (buildAdminDirectory: service password
// and CA read from their files), roles from group DNs with nested membership
// (OpenLDAP's walk up member links), an account in no role group refused, a
// wrong password refused, and a directory that does not answer is a 503.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdminAuthenticator, buildAdminDirectory, type RoleGroups } from '../server/console/admins.js';
import { tempDir } from './helpers/keys.js';
import { startSlapd, type Slapd } from './helpers/slapd.js';

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child() { return silent; }, level: 'silent', silent() {} } as never;

let slapd: Slapd;
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  slapd = await startSlapd();
});
after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await slapd?.stop();
});

async function admins(urls: string[]) {
  const { dir, cleanup } = await tempDir();
  cleanups.push(cleanup);
  const servicePasswordFile = join(dir, 'service-password');
  const caFile = join(dir, 'ca.pem');
  await writeFile(servicePasswordFile, `${slapd.servicePassword}\n`, { mode: 0o600 });
  await writeFile(caFile, slapd.caPem);
  const directory = await buildAdminDirectory({
    kind: 'ldap',
    local: { usersFile: join(dir, 'unused.json') },
    ldap: { urls, flavor: 'openldap', baseDn: slapd.baseDn, userBaseDn: `ou=people,${slapd.baseDn}`, serviceDn: slapd.serviceDn, servicePasswordFile, caFile, tlsServerName: null, insecureSkipVerify: false, timeoutSeconds: 2 },
  });
  // The approver group is named in another case than the directory's: DNs compare case-insensitively.
  const roles: RoleGroups = { viewer: [slapd.groupDns.helpdesk], approver: [slapd.groupDns.admins.toUpperCase()], data: [], sharing: [] };
  const records: { actor: string; decision: string; reason?: string }[] = [];
  return { records, auth: new AdminAuthenticator({ directory, roles, audit: { append: async (e) => (records.push(e), undefined as never) }, clock: Date.now, logger: silent }) };
}

test('roles come from nested group membership in OpenLDAP; no role group, a wrong password and an unreachable directory are refused', { timeout: 60_000 }, async () => {
  const { auth, records } = await admins([slapd.url]);
  const carol = await auth.login('carol', slapd.users.carol.password, '127.0.0.1');
  assert.ok(carol.ok);
  assert.deepEqual([...carol.admin.roles], ['viewer', 'approver'], 'helpdesk directly, mydoc-admins through helpdesk');
  const dave = await auth.login('dave', slapd.users.dave.password, '127.0.0.1');
  assert.ok(dave.ok);
  assert.deepEqual([...dave.admin.roles], ['viewer', 'approver']);
  const alice = await auth.login('alice', slapd.users.alice.password, '127.0.0.1');
  assert.deepEqual(alice, { ok: false, status: 401, message: 'alice is not an administrator of this console (in none of the groups of its roles)' });
  const wrong = await auth.login('carol', 'not-her-password', '127.0.0.1');
  assert.equal(wrong.ok, false);
  assert.equal(!wrong.ok && wrong.status, 401);
  assert.deepEqual(records.map((r) => [r.actor, r.decision]), [['carol', 'allow'], ['dave', 'allow'], ['alice', 'deny'], ['carol', 'deny']]);
  assert.ok(!JSON.stringify(records).includes(slapd.users.carol.password), 'no password in the audit records');

  const down = await admins(['ldap://127.0.0.1:1']);
  assert.deepEqual(await down.auth.login('carol', slapd.users.carol.password, '127.0.0.1'), { ok: false, status: 503, message: 'the directory does not answer; try again in a minute' });
});
