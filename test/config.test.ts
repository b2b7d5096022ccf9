import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../server/config/config.js';
import { renderDemoConfig } from '../server/config/demo-config.js';
import { ConfigError } from '../server/config/errors.js';
import { tempDir } from './helpers/keys.js';

const LDAP = `kind: ldap
  ldap:
    urls: [ldaps://dc1.corp.example, "ldap://dc2.corp.example:389"]
    flavor: ad
    baseDn: DC=corp,DC=example
    serviceDn: CN=svc-pc1,CN=Users,DC=corp,DC=example
    servicePasswordFile: svc.pw
    caFile: dc-ca.pem
    keyDnTemplate: cn={user},ou={pcId},ou=mydoc-keys,DC=corp,DC=example
    keyAttribute: mydocNetworkSecret`;
const MINIMAL = `
pcId: pc-01
dataDir: /srv/mydoc
directory:
  kind: local
backup:
  target:
    kind: path
    path: /mnt/nas/mydoc
`;

/** MINIMAL with its top-level `key:` line replaced by `line` (removed when null), or `line` appended. */
function variant(key: string, line: string | null): string {
  const existing = new RegExp(`^${key}:.*\n`, 'm');
  if (existing.test(MINIMAL)) return MINIMAL.replace(existing, line === null ? '' : `${line}\n`);
  return `${MINIMAL}${line}\n`;
}

function assertConfigError(fn: () => unknown, key: string, messagePart?: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_CONFIG');
    assert.equal(error.key, key);
    assert.ok(error.message.startsWith(`config: ${key}: `), error.message);
    if (typeof messagePart === 'string') assert.ok(error.message.includes(messagePart), error.message);
    if (messagePart instanceof RegExp) assert.match(error.message, messagePart);
    return true;
  });
}

describe('parseConfig', () => {
  const file = '/etc/mydoc/config.yaml';

  it('fills defaults for a minimal file and freezes the result', () => {
    const config = parseConfig(MINIMAL, file);
    assert.deepEqual(config, {
      pcId: 'pc-01',
      dataDir: '/srv/mydoc',
      listen: { host: '127.0.0.1', port: 8443, hostNames: [] },
      tls: {
        certFile: '/srv/mydoc/tls/server-cert.pem',
        keyFile: '/srv/mydoc/tls/server-key.pem',
        caFile: '/srv/mydoc/tls/ca-cert.pem',
      },
      directory: {
        kind: 'local',
        local: {
          usersFile: '/srv/mydoc/local-directory/users.json',
          insecureSecretFile: '/srv/mydoc/local-directory/INSECURE-network-secrets.json',
        },
        ldap: null,
        probe: { intervalSeconds: 5, failuresToLock: 2, timeoutSeconds: 2 },
      },
      backup: { target: { kind: 'path', path: '/mnt/nas/mydoc' }, schedule: '0 */4 * * *', timezone: 'UTC', randomDelaySeconds: 600, shutdownDeadlineSeconds: 60 },
      recovery: { publicKey: null },
      takeout: { maxDays: 14, issuerPublicKeys: [] },
      console: null,
    });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.listen));
    assert.ok(Object.isFrozen(config.listen.hostNames));
    assert.ok(Object.isFrozen(config.backup.target));
  });

  it('accepts every key set explicitly, including an smb target', () => {
    const config = parseConfig(
      `
pcId: PC.42_a
dataDir: /data
listen: { host: 0.0.0.0, port: 9443, hostNames: [pc42.corp.example, 10.0.0.5, "::1"] }
tls: { certFile: /t/c.pem, keyFile: /t/k.pem, caFile: /t/ca.pem }
directory:
  kind: local
  local: { usersFile: /d/u.json, insecureSecretFile: /d/s.json }
backup:
  target: { kind: smb, url: //nas01/backup/mydoc, authFile: /etc/mydoc/smb-auth }
recovery: { publicKey: /etc/mydoc/recovery.pem }
`,
      file,
    );
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 9443, hostNames: ['pc42.corp.example', '10.0.0.5', '::1'] });
    assert.deepEqual(config.tls, { certFile: '/t/c.pem', keyFile: '/t/k.pem', caFile: '/t/ca.pem' });
    assert.deepEqual(config.directory.local, { usersFile: '/d/u.json', insecureSecretFile: '/d/s.json' });
    assert.deepEqual(config.backup.target, { kind: 'smb', url: '//nas01/backup/mydoc', authFile: '/etc/mydoc/smb-auth' });
    assert.equal(config.recovery.publicKey, '/etc/mydoc/recovery.pem');
  });

  const badValues: Array<{ name: string; text: string; key: string; message?: string | RegExp }> = [
    { name: 'pcId with a space', text: variant('pcId', 'pcId: "pc 01"'), key: 'pcId', message: '(got "pc 01")' },
    { name: 'pcId starting with a dot', text: variant('pcId', 'pcId: .pc'), key: 'pcId' },
    { name: 'pcId with a slash', text: variant('pcId', 'pcId: a/b'), key: 'pcId' },
    { name: 'pcId of 64 characters', text: variant('pcId', `pcId: ${'a'.repeat(64)}`), key: 'pcId' },
    { name: 'pcId missing', text: variant('pcId', null), key: 'pcId', message: 'required' },
    { name: 'pcId a list', text: variant('pcId', 'pcId: [a]'), key: 'pcId' },
    { name: 'dataDir missing', text: variant('dataDir', null), key: 'dataDir', message: 'required' },
    { name: 'dataDir empty', text: variant('dataDir', 'dataDir: ""'), key: 'dataDir' },
    { name: 'dataDir a number', text: variant('dataDir', 'dataDir: 5'), key: 'dataDir' },
    {
      name: 'port 0',
      text: variant('listen', 'listen: { port: 0 }'),
      key: 'listen.port',
      message: 'config: listen.port: must be an integer from 1 to 65535 (got 0)',
    },
    { name: 'port 70000', text: variant('listen', 'listen: { port: 70000 }'), key: 'listen.port', message: '(got 70000)' },
    {
      name: 'port "abc"',
      text: variant('listen', 'listen: { port: abc }'),
      key: 'listen.port',
      message: 'config: listen.port: must be an integer from 1 to 65535 (got "abc")',
    },
    { name: 'port 1.5', text: variant('listen', 'listen: { port: 1.5 }'), key: 'listen.port' },
    { name: 'port a quoted number', text: variant('listen', 'listen: { port: "8443" }'), key: 'listen.port' },
    { name: 'listen.host empty', text: variant('listen', 'listen: { host: "" }'), key: 'listen.host' },
    { name: 'listen.host with a space', text: variant('listen', 'listen: { host: "a b" }'), key: 'listen.host' },
    { name: 'listen not a mapping', text: variant('listen', 'listen: 5'), key: 'listen' },
    { name: 'hostNames not a list', text: variant('listen', 'listen: { hostNames: pc.example }'), key: 'listen.hostNames' },
    {
      name: 'hostNames with a bad name',
      text: variant('listen', 'listen: { hostNames: [ok.example, "bad_name!"] }'),
      key: 'listen.hostNames.1',
    },
    {
      name: 'directory.kind ldap without a directory.ldap section',
      text: MINIMAL.replace('kind: local', 'kind: ldap'),
      key: 'directory.ldap',
      message: 'is required when directory.kind is "ldap"',
    },
    { name: 'ldap url of another scheme', text: MINIMAL.replace('kind: local', LDAP.replace('ldaps://dc1.corp.example', 'http://dc1')), key: 'directory.ldap.urls.0' },
    { name: 'ldap without caFile', text: MINIMAL.replace('kind: local', LDAP.replace(/\n    caFile: .*/, '')), key: 'directory.ldap.caFile', message: 'insecureSkipVerify' },
    { name: 'ldap key DN template without {user}', text: MINIMAL.replace('kind: local', LDAP.replace('cn={user},', 'cn=x,')), key: 'directory.ldap.keyDnTemplate' },
    { name: 'ldap flavor', text: MINIMAL.replace('kind: local', LDAP.replace('flavor: ad', 'flavor: novell')), key: 'directory.ldap.flavor' },
    { name: 'probe interval 0', text: MINIMAL.replace('kind: local', 'kind: local\n  probe: { intervalSeconds: 0 }'), key: 'directory.probe.intervalSeconds' },
    { name: 'probe failures 1.5', text: MINIMAL.replace('kind: local', 'kind: local\n  probe: { failuresToLock: 1.5 }'), key: 'directory.probe.failuresToLock' },
    { name: 'directory missing', text: MINIMAL.replace('directory:\n  kind: local\n', ''), key: 'directory.kind', message: 'required' },
    {
      name: 'directory.kind other',
      text: MINIMAL.replace('kind: local', 'kind: ad'),
      key: 'directory.kind',
      message: 'must be one of: local, ldap (got "ad")',
    },
    {
      name: 'backup.target.kind ftp',
      text: MINIMAL.replace('kind: path', 'kind: ftp'),
      key: 'backup.target.kind',
      message: 'must be one of: path, smb (got "ftp")',
    },
    { name: 'backup missing', text: MINIMAL.replace(/backup:[\s\S]*$/, ''), key: 'backup.target.kind', message: 'required' },
    { name: 'kind path without path', text: MINIMAL.replace(/ +path: \/mnt.*\n/, ''), key: 'backup.target.path', message: 'required' },
    {
      name: 'kind smb without url',
      text: MINIMAL.replace('kind: path\n    path: /mnt/nas/mydoc', 'kind: smb\n    authFile: /a'),
      key: 'backup.target.url',
      message: 'required',
    },
    {
      name: 'kind smb without authFile',
      text: MINIMAL.replace('kind: path\n    path: /mnt/nas/mydoc', 'kind: smb\n    url: //nas/share'),
      key: 'backup.target.authFile',
      message: 'required',
    },
    {
      name: 'kind smb with a malformed url',
      text: MINIMAL.replace('kind: path\n    path: /mnt/nas/mydoc', 'kind: smb\n    url: "\\\\\\\\nas\\\\share"\n    authFile: /a'),
      key: 'backup.target.url',
      message: '//host/share',
    },
    {
      name: 'kind smb with a path',
      text: MINIMAL.replace('kind: path', 'kind: smb\n    url: //nas/share\n    authFile: /a'),
      key: 'backup.target.path',
      message: 'only allowed when backup.target.kind is "path"',
    },
    { name: 'backup.target.mountPoint below the path', text: MINIMAL.replace('path: /mnt/nas/mydoc', 'path: /mnt/nas/mydoc\n    mountPoint: /mnt/nas/mydoc/deeper'), key: 'backup.target.mountPoint', message: 'a folder above it' },
    { name: 'backup.target.mountPoint for smb', text: MINIMAL.replace('kind: path\n    path: /mnt/nas/mydoc', 'kind: smb\n    url: //nas/share\n    authFile: /a\n    mountPoint: /mnt'), key: 'backup.target.mountPoint', message: 'only allowed when backup.target.kind is "path"' },
    { name: 'backup.schedule not cron', text: MINIMAL.replace('  target:', '  schedule: "every hour"\n  target:'), key: 'backup.schedule', message: 'cron expression' },
    { name: 'backup.schedule 61 minutes', text: MINIMAL.replace('  target:', '  schedule: "61 * * * *"\n  target:'), key: 'backup.schedule' },
    { name: 'backup.timezone unknown', text: MINIMAL.replace('  target:', '  timezone: Mars/Olympus\n  target:'), key: 'backup.timezone', message: 'IANA time zone' },
    { name: 'backup.shutdownDeadlineSeconds 0', text: MINIMAL.replace('  target:', '  shutdownDeadlineSeconds: 0\n  target:'), key: 'backup.shutdownDeadlineSeconds' },
    { name: 'backup.randomDelaySeconds negative', text: MINIMAL.replace('  target:', '  randomDelaySeconds: -1\n  target:'), key: 'backup.randomDelaySeconds' },
    { name: 'recovery.publicKey a number', text: variant('recovery', 'recovery: { publicKey: 3 }'), key: 'recovery.publicKey' },
    {
      name: 'unknown key listen.prot',
      text: variant('listen', 'listen: { prot: 8443 }'),
      key: 'listen.prot',
      message: 'unknown key (allowed here: host, port, hostNames)',
    },
    { name: 'unknown top-level key', text: variant('datadir', 'datadir: /x'), key: 'datadir', message: 'unknown key' },
    { name: 'unknown key in backup.target', text: MINIMAL.replace('kind: path', 'kind: path\n    pth: /x'), key: 'backup.target.pth' },
    { name: 'unknown key in directory.local', text: MINIMAL.replace('kind: local', 'kind: local\n  local: { userFile: /u }'), key: 'directory.local.userFile' },
    { name: 'console without url', text: variant('console', 'console: { caFile: ca.pem }'), key: 'console.url', message: 'is required' },
    { name: 'console without caFile', text: variant('console', 'console: { url: "https://console.corp.example:9444" }'), key: 'console.caFile', message: 'is required' },
    { name: 'a console url over http', text: variant('console', 'console: { url: "http://console:9444", caFile: ca.pem }'), key: 'console.url', message: 'https://host:port' },
    { name: 'a console url without a port', text: variant('console', 'console: { url: "https://console", caFile: ca.pem }'), key: 'console.url' },
    { name: 'a console url with a path', text: variant('console', 'console: { url: "https://console:9444/x", caFile: ca.pem }'), key: 'console.url' },
    { name: 'a console url with credentials', text: variant('console', 'console: { url: "https://a:b@console:9444", caFile: ca.pem }'), key: 'console.url' },
    { name: 'a short enrolment token', text: variant('console', 'console: { url: "https://console:9444", caFile: ca.pem, enrolmentToken: abc }'), key: 'console.enrolmentToken' },
    { name: 'an unknown key in console', text: variant('console', 'console: { url: "https://console:9444", caFile: ca.pem, token: x }'), key: 'console.token', message: 'unknown key' },
    { name: 'an empty file', text: '', key: '(file)', message: 'must contain a YAML mapping' },
    { name: 'a list at the top', text: '- a\n- b\n', key: '(file)' },
  ];

  for (const { name, text, key, message } of badValues) {
    it(`rejects ${name} naming ${key}`, () => assertConfigError(() => parseConfig(text, file), key, message));
  }

  it('reads a console section, the CA path against the config folder, the token optional', () => {
    const config = parseConfig(variant('console', 'console:\n  url: "https://console.corp.example:9444/"\n  caFile: console-ca.pem\n  enrolmentToken: "mydoc-enrol-0123456789abcdef"'), file);
    assert.deepEqual(config.console, { url: 'https://console.corp.example:9444', caFile: '/etc/mydoc/console-ca.pem', enrolmentToken: 'mydoc-enrol-0123456789abcdef' });
    assert.equal(parseConfig(variant('console', 'console: { url: "https://[::1]:9444", caFile: /c.pem }'), file).console?.enrolmentToken, undefined);
  });

  it('reads a directory.ldap section with defaults, paths resolved against the config folder', () => {
    const config = parseConfig(MINIMAL.replace('kind: local', LDAP), file);
    assert.equal(config.directory.kind, 'ldap');
    assert.deepEqual(config.directory.ldap?.urls, ['ldaps://dc1.corp.example', 'ldap://dc2.corp.example:389']);
    assert.equal(config.directory.ldap?.userBaseDn, 'DC=corp,DC=example');
    assert.equal(config.directory.ldap?.caFile, join(dirname(file), 'dc-ca.pem'));
    assert.equal(config.directory.ldap?.insecureSkipVerify, false);
    assert.deepEqual(config.directory.probe, { intervalSeconds: 5, failuresToLock: 2, timeoutSeconds: 2 });
  });

  it('reports a YAML syntax error with the file and line', () => {
    assertConfigError(
      () => parseConfig('pcId: a\nlisten: [1, 2\ndataDir: /x\n', file),
      '(file)',
      new RegExp(`^config: \\(file\\): ${file} line 3, column \\d+: `),
    );
  });

  it('reports a duplicate key with the file and line', () => {
    assertConfigError(() => parseConfig(`${MINIMAL}pcId: again\n`, file), '(file)', /\/etc\/mydoc\/config\.yaml line 10, column 1: .*unique/);
  });

  it('rejects an unknown YAML tag', () => {
    assertConfigError(() => parseConfig(MINIMAL.replace('pcId: pc-01', 'pcId: !secret pc-01'), file), '(file)', /line 2/);
  });

  it('resolves relative paths against the config folder', () => {
    const config = parseConfig(
      MINIMAL.replace('dataDir: /srv/mydoc', 'dataDir: data')
        .replace('path: /mnt/nas/mydoc', 'path: ../nas')
        .concat('tls: { caFile: certs/ca.pem }\nrecovery: { publicKey: ./recovery.pem }\n'),
      '/etc/mydoc/config.yaml',
    );
    assert.equal(config.dataDir, '/etc/mydoc/data');
    assert.equal(config.tls.certFile, '/etc/mydoc/data/tls/server-cert.pem');
    assert.equal(config.tls.caFile, '/etc/mydoc/certs/ca.pem');
    assert.equal(config.directory.local.usersFile, '/etc/mydoc/data/local-directory/users.json');
    assert.deepEqual(config.backup.target, { kind: 'path', path: '/etc/nas' });
    assert.equal(config.recovery.publicKey, '/etc/mydoc/recovery.pem');
  });
});

describe('loadConfig', () => {
  let dir = '';
  let cleanup: () => Promise<void> = async () => {};
  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-config-test-'));
  });
  after(() => cleanup());

  it('loads a file and resolves relative paths against its folder', async () => {
    const configDir = join(dir, 'etc');
    await mkdir(configDir);
    const file = join(configDir, 'mydoc.yaml');
    await writeFile(file, MINIMAL.replace('dataDir: /srv/mydoc', 'dataDir: ./state'));
    const config = await loadConfig(file);
    assert.equal(config.dataDir, join(configDir, 'state'));
    assert.equal(config.tls.keyFile, join(configDir, 'state', 'tls', 'server-key.pem'));
  });

  it('reports a missing file and how to create one', async () => {
    const file = join(dir, 'nope.yaml');
    await assert.rejects(loadConfig(file), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.key, '(file)');
      assert.ok(error.message.includes(file), error.message);
      assert.ok(error.message.includes('does not exist'), error.message);
      assert.ok(error.message.includes('mydoc init'), error.message);
      return true;
    });
  });

  it('round-trips renderDemoConfig', async () => {
    const options = {
      pcId: 'demo-pc',
      dataDir: join(dir, 'demo', 'data'),
      nasDir: join(dir, 'demo', 'nas "quoted" \\ path'),
      recoveryPublicKey: join(dir, 'demo', 'recovery-public.pem'),
    };
    const file = join(dir, 'demo.yaml');
    await writeFile(file, renderDemoConfig(options));
    const config = await loadConfig(file);
    assert.equal(config.pcId, options.pcId);
    assert.equal(config.dataDir, options.dataDir);
    assert.equal(config.listen.port, 8443);
    assert.equal(config.directory.kind, 'local');
    assert.deepEqual(config.backup.target, { kind: 'path', path: options.nasDir });
    assert.equal(config.recovery.publicKey, options.recoveryPublicKey);
    assert.match(renderDemoConfig(options), /^# /m);
    assert.equal(config.console, null, 'no console unless the demo has one');
    const consoleLink = { url: 'https://127.0.0.1:9444', caFile: join(dir, 'demo', 'console-ca.pem'), enrolmentToken: 'mydoc-enrol-demo-0123456789abcdef' };
    await writeFile(file, renderDemoConfig({ ...options, console: consoleLink }));
    assert.deepEqual((await loadConfig(file)).console, consoleLink);
  });
});
