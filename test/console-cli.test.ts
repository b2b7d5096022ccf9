/**
 * `mydoc console ...` as a person runs it, each command a real process:
 * init (modes, keys, store, trail), pc add|remove|list with no console
 * running, audit verify finding a tampered line, bad configurations, and
 * `console serve` answering on both ports, with `pc remove` reaching the
 * running console (the PC's live link dropped at once, its next handshake
 * refused and audited).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { ConsoleLink } from '../server/agent/console-link.js';
import { consoleFolder } from '../server/console/data-folder.js';
import { LINK_ALPN } from '../server/link/protocol.js';
import type { PcStatus } from '../server/link/status.js';
import { loadIssuerPrivateKey, loadIssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { launchDaemon, stopDaemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { agentIdentity, captureLogger, until } from './helpers/link-fakes.js';
import { freePort, MYDOC_BIN, runCommand, type CommandResult } from './helpers/server.js';

const env = { ...process.env, MYDOC_CONSOLE_CONFIG: '', MYDOC_LOG_LEVEL: 'warn' };
const STATUS: PcStatus = { gate: 'online', takeoutUntil: null, users: ['alice'], lastBackupAt: null, agentVersion: '9.9.9' };

function mydoc(args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, [MYDOC_BIN, ...args], { env, timeoutMs: 60_000 });
}

/** A failure is exactly one line on stderr, starting with "mydoc: ". */
function assertOneLineError(r: CommandResult, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0]!, /^mydoc: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(lines[0]!, /internal error|    at /);
}

async function writeConsoleConfig(dir: string, ports: { port: number; linkPort: number }, extra = ''): Promise<string> {
  const file = join(dir, 'console.yaml');
  await writeFile(file, `dataDir: console-data\nlisten: { port: ${ports.port}, linkPort: ${ports.linkPort} }\ndirectory: { kind: local }\nroles: { viewer: [admins], approver: [admins] }\nlink: { heartbeatSeconds: 1 }\n${extra}`);
  return file;
}

/** Every file under `dir`, with its bytes. */
async function allFiles(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

const tokenOf = (stdout: string): string => {
  const match = /enrolmentToken: (mydoc-enrol-[A-Za-z0-9_-]{43})\n/.exec(stdout);
  assert.ok(match, `a token in:\n${stdout}`);
  return match[1]!;
};

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('console init: the data folder, its keys, store and trail; refused twice; bad configurations named', async () => {
  const { dir, cleanup } = await tempDir('mydoc-console-cli-');
  try {
    const config = await writeConsoleConfig(dir, { port: await freePort(), linkPort: await freePort() });
    assertOneLineError(await mydoc(['console', 'init', '--config', join(dir, 'missing.yaml')]), 1, /config: \(file\): .*missing\.yaml does not exist/);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, (await readFile(config, 'utf8')).replace('linkPort:', 'linkport:'));
    assertOneLineError(await mydoc(['console', 'init', '--config', bad]), 1, /config: listen\.linkport: unknown key \(allowed here: host, port, linkPort, hostNames\)/);
    assertOneLineError(await mydoc(['console', 'pc', 'add', 'pc-1', '--config', config]), 1, /not initialised; run "mydoc console init --config FILE" first/);
    assertOneLineError(await mydoc(['console', 'pc', 'frob', '--config', config]), 2, /unknown command "console pc frob"/);

    // A store that does not answer fails init before any key is made, with a sentence naming it.
    const pgPort = await freePort();
    const down = join(dir, 'pg-down.yaml');
    await writeFile(down, (await readFile(config, 'utf8')).replace('dataDir: console-data', 'dataDir: pg-data') + `store: { kind: postgres, postgres: { host: 127.0.0.1, port: ${pgPort}, database: mydoc, user: console } }\n`);
    assertOneLineError(await mydoc(['console', 'init', '--config', down]), 1, new RegExp(`127\\.0\\.0\\.1:${pgPort}`));
    assert.deepEqual((await readdir(join(dir, 'pg-data'))).sort(), [], 'no key written');
    const noPassword = join(dir, 'pg-nopw.yaml');
    await writeFile(noPassword, (await readFile(down, 'utf8')).replace('user: console }', 'user: console, passwordFile: nope.pw }'));
    assertOneLineError(await mydoc(['console', 'init', '--config', noPassword]), 1, /cannot read the PostgreSQL password file \(store\.postgres\.passwordFile\) .*nope\.pw: ENOENT/);

    const init = await mydoc(['console', 'init', '--config', config]);
    assert.equal(init.status, 0, init.stderr);
    const paths = consoleFolder(join(dir, 'console-data'));
    assert.match(init.stdout, new RegExp(`take-out issuer public key \\S+ .*${paths.issuerPublicKey}`));
    assert.equal(await mode(join(dir, 'console-data')), 0o700);
    for (const file of [paths.tls.caFile, paths.tls.certFile, paths.tls.keyFile, paths.issuerPrivateKey, paths.issuerPublicKey, paths.auditLog, paths.sqliteFile, paths.marker]) {
      assert.equal(await mode(file), 0o600, file);
    }
    const ca = new X509Certificate(await readFile(paths.tls.caFile));
    const cert = new X509Certificate(await readFile(paths.tls.certFile));
    assert.ok(cert.verify(ca.publicKey), 'the certificate chains to the CA');
    assert.ok(cert.checkIP('127.0.0.1'));
    const [privateKey, publicKey] = [await loadIssuerPrivateKey(paths.issuerPrivateKey, 'private'), await loadIssuerPublicKey(paths.issuerPublicKey, 'public')];
    assert.equal(privateKey.kid, publicKey.kid);
    assert.match(init.stdout, new RegExp(privateKey.kid));

    assertOneLineError(await mydoc(['console', 'init', '--config', config]), 1, /already initialised .*refusing to replace its CA and issuer key/);
  } finally {
    await cleanup();
  }
});

test('console pc add|list|remove with no console running, and audit verify finding a tampered line', async () => {
  const { dir, cleanup } = await tempDir('mydoc-console-cli-');
  try {
    const linkPort = await freePort();
    const config = await writeConsoleConfig(dir, { port: await freePort(), linkPort });
    assert.equal((await mydoc(['console', 'init', '--config', config])).status, 0);
    const paths = consoleFolder(join(dir, 'console-data'));

    const added = await mydoc(['console', 'pc', 'add', 'pc-1', '--config', config]);
    assert.equal(added.status, 0, added.stderr);
    const token = tokenOf(added.stdout);
    assert.match(added.stdout, new RegExp(`^console:\\n  url: https://127\\.0\\.0\\.1:${linkPort}\\n  caFile: ${paths.tls.caFile}\\n  enrolmentToken: `, 'm'));
    const renewed = await mydoc(['console', 'pc', 'add', 'pc-1', '--config', config]);
    assert.equal(renewed.status, 0, renewed.stderr);
    assert.match(renewed.stdout, /^new enrolment token for PC pc-1/);
    const second = tokenOf(renewed.stdout);
    assert.notEqual(second, token);
    // Only the tokens' hashes are kept: neither token is anywhere in the data folder (store, WAL, trail).
    for (const { path, bytes } of await allFiles(join(dir, 'console-data'))) {
      for (const t of [token, second]) assert.equal(bytes.includes(Buffer.from(t)), false, `${path} holds a token`);
    }
    assertOneLineError(await mydoc(['console', 'pc', 'add', 'no/such id', '--config', config]), 1, /"no\/such id" is not a PC id/);
    assertOneLineError(await mydoc(['console', 'pc', 'add', '--config', config]), 2, /usage: mydoc console pc add PCID/);

    const list = await mydoc(['console', 'pc', 'list', '--config', config]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^PC\s+STATE\s+LAST SEEN/);
    assert.match(list.stdout, /^pc-1\s+not enrolled\s+-/m);

    const removed = await mydoc(['console', 'pc', 'remove', 'pc-1', '--config', config]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /^removed PC pc-1\n$/);
    assertOneLineError(await mydoc(['console', 'pc', 'remove', 'pc-1', '--config', config]), 1, /PC pc-1 is not registered on this console \(it was removed already\)/);
    assertOneLineError(await mydoc(['console', 'pc', 'remove', 'pc-9', '--config', config]), 1, /PC pc-9 is not registered on this console$/);

    const verified = await mydoc(['console', 'audit', 'verify', '--config', config]);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /^console audit trail OK: \d+ lines/);
    const trail = await readFile(paths.auditLog, 'utf8');
    for (const action of ['"console.init"', '"pc.add"', '"pc.remove"']) assert.ok(trail.includes(action), `${action} in the trail`);
    // One edited line is found, by its number.
    const lines = trail.split('\n');
    const at = lines.findIndex((l) => l.includes('"pc.remove"'));
    lines[at] = lines[at]!.replace('"target":"pc-1"', '"target":"pc-2"');
    await writeFile(paths.auditLog, lines.join('\n'));
    assertOneLineError(await mydoc(['console', 'audit', 'verify', '--config', config]), 1, new RegExp(`console audit trail damaged at line ${at + 1}: its hash does not match`));
  } finally {
    await cleanup();
  }
});

test('console serve answers on both ports; pc add and remove reach the running console, which drops the link at once', async () => {
  const { dir, cleanup } = await tempDir('mydoc-console-cli-');
  const links: ConsoleLink[] = [];
  try {
    const ports = { port: await freePort(), linkPort: await freePort() };
    const config = await writeConsoleConfig(dir, ports);
    assert.equal((await mydoc(['console', 'init', '--config', config])).status, 0);
    const paths = consoleFolder(join(dir, 'console-data'));
    const ca = await readFile(paths.tls.caFile, 'utf8');
    const daemon = await launchDaemon({
      name: 'mydoc console serve',
      command: process.execPath,
      args: [MYDOC_BIN, 'console', 'serve', '--config', config],
      env,
      ready: () => httpsGet(`https://127.0.0.1:${ports.port}/healthz`, ca).then((r) => r.status === 200, () => false),
      readyTimeoutMs: 30_000,
      where: `https://127.0.0.1:${ports.port}/healthz`,
      graceMs: 10_000,
    });
    try {
      assert.match((await httpsGet(`https://127.0.0.1:${ports.port}/healthz`, ca)).body, /"ok":true/);
      // Only the console's own account can use its admin socket.
      assert.equal(await mode(paths.adminSocket), 0o600);
      assert.equal(await mode(paths.run), 0o700);
      // The link port speaks TLS with the console's certificate and the link's ALPN.
      const socket = tls.connect({ host: '127.0.0.1', port: ports.linkPort, ca, ALPNProtocols: [LINK_ALPN] });
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
      assert.equal(socket.alpnProtocol, LINK_ALPN);
      socket.destroy();

      // pc add goes through the running console (its trail's one writer).
      const added = await mydoc(['console', 'pc', 'add', 'pc-live', '--config', config]);
      assert.equal(added.status, 0, added.stderr);
      const start = async (name: string, token: string | undefined) => {
        const id = await agentIdentity(dir, name);
        const log = captureLogger();
        const link = ConsoleLink.start({ url: `https://127.0.0.1:${ports.linkPort}`, caFile: paths.tls.caFile, pcId: 'pc-live', dataDir: id.dataDir, deviceKey: id.deviceKey, devicePublicPem: id.devicePublicPem, enrolmentToken: token, agentVersion: '9.9.9', status: async () => STATUS, routes: {}, logger: log.logger, backoff: { baseMs: 50, capMs: 200 } });
        links.push(link);
        return { link, log };
      };
      const agent = await start('agent', tokenOf(added.stdout));
      await until(() => agent.link.connected, 'the agent enrolled and linked');
      // Another device claiming the enrolled pcId, with a token, is refused, and told why.
      const impostor = await start('impostor', `mydoc-enrol-${'A'.repeat(43)}`);
      await until(() => impostor.log.text().includes('ERR_ENROL_TAKEN'), 'the impostor refused');
      await impostor.link.stop();

      const removedAt = Date.now();
      const removed = await mydoc(['console', 'pc', 'remove', 'pc-live', '--config', config]);
      assert.equal(removed.status, 0, removed.stderr);
      assert.match(removed.stdout, /removed PC pc-live; its link, if it had one, is dropped/);
      await until(() => !agent.link.connected, 'the link dropped', 3000);
      assert.ok(Date.now() - removedAt < 5000);
      await until(() => agent.log.text().includes('ERR_ENROL_REMOVED'), 'the removed PC refused at its next handshake');
      await agent.link.stop();
    } finally {
      await stopDaemon(daemon, 10_000);
    }
    assert.equal((await daemon.exited).code, 0, daemon.output());
    const verified = await mydoc(['console', 'audit', 'verify', '--config', config]);
    assert.equal(verified.status, 0, verified.stderr);
    const records = (await readFile(paths.auditLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; target?: string; decision: string; reason?: string });
    const find = (action: string, decision: string, reason?: RegExp) => records.find((r) => r.action === action && r.decision === decision && (!reason || reason.test(r.reason ?? '')));
    assert.ok(find('console.start', 'info'));
    assert.ok(find('pc.add', 'allow'));
    assert.ok(find('pc.enrol', 'allow', /enrolled with device [0-9a-f]{64}/));
    assert.ok(find('pc.enrol', 'deny', /^ERR_ENROL_TAKEN: PC pc-live is enrolled with another device key/), 'the impostor is in the trail');
    assert.ok(find('pc.remove', 'allow'));
    assert.ok(find('pc.connect', 'deny', /^ERR_ENROL_REMOVED: PC pc-live was removed/), 'the refusal after the removal is in the trail');
    assert.ok(find('console.stop', 'info'));
  } finally {
    await Promise.all(links.map((l) => l.stop()));
    await cleanup();
  }
});

test('console serve refuses a port that is taken, naming it', async () => {
  const { dir, cleanup } = await tempDir('mydoc-console-cli-');
  const blocker = tls.createServer({});
  try {
    const ports = { port: await freePort(), linkPort: await freePort() };
    await new Promise<void>((resolve) => blocker.listen(ports.linkPort, '127.0.0.1', resolve));
    const config = await writeConsoleConfig(dir, ports);
    assert.equal((await mydoc(['console', 'init', '--config', config])).status, 0);
    assertOneLineError(await mydoc(['console', 'serve', '--config', config]), 1, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${ports.linkPort} \\(listen\\.linkPort\\)`));
    // What it had opened is closed again: the commands work on the store directly.
    const added = await mydoc(['console', 'pc', 'add', 'pc-1', '--config', config]);
    assert.equal(added.status, 0, added.stderr);
    assert.match((await mydoc(['console', 'pc', 'list', '--config', config])).stdout, /^pc-1\s+not enrolled/m);
  } finally {
    blocker.close();
    await cleanup();
  }
});
