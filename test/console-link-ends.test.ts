/**
 * The link's two ends in one process over real TLS sockets on 127.0.0.1,
 * with an in-process registry (the real-process tests are
 * console-link.test.ts and console-enrol.test.ts): admission, refusal, the
 * agent pinning the console's CA, a socket without a device certificate,
 * requests and their deadlines, heartbeat jitter, statusChanged, drop, and
 * the reconnect backoff measured at a listener.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createTlsMaterial } from '../server/http/tls.js';
import { ConsoleLink, requireLinkSupport, type LinkRoutes } from '../server/agent/console-link.js';
import { MAX_ADMISSIONS, startLinkServer } from '../server/console/link/server.js';
import type { LinkHub } from '../server/console/link/hub.js';
import { deviceCertificate, deviceIdOf } from '../server/link/device-identity.js';
import { LINK_ALPN, LINK_PATHS } from '../server/link/protocol.js';
import type { PcStatus } from '../server/link/status.js';
import { dataFolder } from '../shares/data-folder.js';
import { tempDir } from './helpers/keys.js';
import { agentIdentity, captureLogger, FakeRegistry, TEST_CONSOLE_KEY, until, type AgentIdentity } from './helpers/link-fakes.js';
import { freePort } from './helpers/server.js';

const STATUS: PcStatus = { gate: 'online', takeoutUntil: null, users: ['alice'], lastBackupAt: null, agentVersion: '1.2.3' };

describe('the link between an agent and the console (in one process)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let caFile: string;
  let otherCaFile: string;
  let hub: LinkHub;
  let port: number;
  let consoleTls: { cert: string; key: string };
  const registry = new FakeRegistry();
  const consoleLog = captureLogger();
  const links: ConsoleLink[] = [];

  function startAgent(id: AgentIdentity, pcId: string, opts: { token?: string; routes?: LinkRoutes; ca?: string; status?: () => Promise<PcStatus>; url?: string } = {}) {
    const log = captureLogger();
    const link = ConsoleLink.start({
      url: opts.url ?? `https://127.0.0.1:${port}`,
      caFile: opts.ca ?? caFile,
      pcId,
      dataDir: id.dataDir,
      deviceKey: id.deviceKey,
      devicePublicPem: id.devicePublicPem,
      enrolmentToken: opts.token,
      agentVersion: '1.2.3',
      status: opts.status ?? (async () => STATUS),
      routes: opts.routes ?? {},
      logger: log.logger,
      backoff: { baseMs: 50, capMs: 200 },
    });
    links.push(link);
    return { link, log };
  }

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-link-'));
    const tlsMaterial = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'console' });
    const other = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'impostor' });
    caFile = `${dir}/ca.pem`;
    otherCaFile = `${dir}/other-ca.pem`;
    await writeFile(caFile, tlsMaterial.caCertPem);
    await writeFile(otherCaFile, other.caCertPem);
    port = await freePort();
    consoleTls = { cert: tlsMaterial.certPem, key: tlsMaterial.keyPem };
    hub = await startLinkServer({ host: '127.0.0.1', port, tls: consoleTls, heartbeatSeconds: 0.3, consoleKey: TEST_CONSOLE_KEY, registry, logger: consoleLog.logger });
  });

  after(async () => {
    await Promise.all(links.map((l) => l.stop()));
    await hub.close();
    await cleanup();
  });

  it('enrols with the token once, pins the device id, reports status, and does not send the token again', async () => {
    const id = await agentIdentity(dir, 'pc-a');
    registry.tokens.set('pc-a', 'token-a');
    const { link, log } = startAgent(id, 'pc-a', { token: 'token-a' });
    await until(() => link.connected && registry.statuses.some((s) => s.pcId === 'pc-a'), 'pc-a connected with a status');
    assert.equal(registry.devices.get('pc-a'), deviceIdOf(id.devicePublicPem));
    assert.ok(hub.isConnected('pc-a'));
    assert.match(log.text(), /now enrolled/);
    const marker = JSON.parse(await readFile(dataFolder(id.dataDir).consoleEnrolment, 'utf8')) as { tokenSha256: string };
    assert.match(marker.tokenSha256, /^[0-9a-f]{64}$/);
    assert.ok(!(await readFile(dataFolder(id.dataDir).consoleEnrolment, 'utf8')).includes('token-a'), 'the marker does not hold the token');
    hub.drop('pc-a');
    await until(() => registry.admits.filter((a) => a.identity.pcId === 'pc-a').length >= 2 && link.connected, 'pc-a back after the drop');
    const second = registry.admits.filter((a) => a.identity.pcId === 'pc-a')[1]!;
    assert.equal(second.identity.enrolmentToken, undefined, 'the token is not sent once accepted');
    assert.ok(registry.log.includes('disconnected pc-a'));
    assert.ok(!log.text().includes('token-a'), 'the token is never logged');
  });

  it('the link refuses to start on a Node.js without http2.performServerHandshake (before 20.12), with a clear error', () => {
    assert.throws(() => requireLinkSupport({}, 'v20.11.1'), (err: Error & { code?: string }) => err.code === 'ERR_NODE_VERSION' && /needs Node\.js 20\.12 or later.*this is Node\.js v20\.11\.1/.test(err.message));
    assert.doesNotThrow(() => requireLinkSupport());
  });

  it('a refused PC logs the console\'s message and keeps trying with backoff', async () => {
    const id = await agentIdentity(dir, 'pc-b');
    const { link, log } = startAgent(id, 'pc-b', { token: 'wrong' });
    await until(() => /refused this PC: the enrolment token is not known \(ERR_ENROL_UNKNOWN\)/.test(log.text()), 'the refusal logged');
    assert.equal(link.connected, false);
    assert.equal(hub.isConnected('pc-b'), false);
  });

  it('a PC removed (dropped) while it is being admitted is not linked', async () => {
    const id = await agentIdentity(dir, 'pc-r');
    registry.devices.set('pc-r', deviceIdOf(id.devicePublicPem));
    let release!: () => void;
    registry.hold = new Promise<void>((resolve) => (release = resolve));
    const { link } = startAgent(id, 'pc-r');
    await until(() => registry.admits.some((a) => a.identity.pcId === 'pc-r'), 'pc-r being admitted');
    // pc remove: the row is marked removed and the link dropped, while the admission already read the row.
    registry.removed.add('pc-r');
    hub.drop('pc-r');
    registry.hold = undefined;
    release();
    await until(() => registry.admits.filter((a) => a.identity.pcId === 'pc-r').length >= 2, 'pc-r dialed again and was refused');
    assert.equal(hub.isConnected('pc-r'), false);
    assert.equal(link.connected, false);
    assert.ok(!registry.log.includes('connected pc-r'), `pc-r was never linked: ${registry.log.join(', ')}`);
  });

  it('an event line over 64 KiB drops the PC\'s link; one under it is passed on', async () => {
    const id = await agentIdentity(dir, 'pc-big');
    registry.devices.set('pc-big', deviceIdOf(id.devicePublicPem));
    const { link } = startAgent(id, 'pc-big');
    await until(() => link.connected && hub.isConnected('pc-big'), 'pc-big connected');
    link.push({ type: 'takeout.request', request: { pad: 'x'.repeat(60 * 1024) } } as never);
    await until(() => registry.events.some((e) => e.pcId === 'pc-big'), 'the 60 KiB event passed on');
    const admitted = registry.admits.filter((a) => a.identity.pcId === 'pc-big').length;
    link.push({ type: 'takeout.request', request: { pad: 'x'.repeat(65 * 1024) } } as never);
    await until(() => /the PC's events stream failed; dropping its link/.test(consoleLog.text()), 'the link dropped');
    assert.equal(registry.events.filter((e) => e.pcId === 'pc-big').length, 1, 'the long line is not passed on');
    await until(() => registry.admits.filter((a) => a.identity.pcId === 'pc-big').length > admitted, 'pc-big dials again');
  });

  it('a second key claiming an enrolled pcId is refused', async () => {
    const id = await agentIdentity(dir, 'pc-a-impostor');
    const { log } = startAgent(id, 'pc-a', { token: 'token-a' });
    await until(() => /enrolled with another device key \(ERR_ENROL_TAKEN\)/.test(log.text()), 'the refusal logged');
  });

  it('an agent refuses a console whose certificate does not chain to console.caFile, before saying anything', async () => {
    const id = await agentIdentity(dir, 'pc-c');
    const { link, log } = startAgent(id, 'pc-c', { ca: otherCaFile });
    await until(() => /does not chain to console.caFile/.test(log.text()), 'the CA refusal logged');
    assert.equal(link.connected, false);
    assert.equal(registry.admits.filter((a) => a.identity.pcId === 'pc-c').length, 0, 'the console never heard the identity');
  });

  it('an agent refuses a console certificate for another host name', async () => {
    const id = await agentIdentity(dir, 'pc-h');
    // The same console certificate (for localhost and 127.0.0.1) on 127.0.0.2.
    const elsewhere = await startLinkServer({ host: '127.0.0.2', port, tls: consoleTls, heartbeatSeconds: 1, consoleKey: TEST_CONSOLE_KEY, registry, logger: captureLogger().logger });
    const { log } = startAgent(id, 'pc-h', { url: `https://127.0.0.2:${port}` });
    await until(() => /certificate is not for 127\.0\.0\.2/.test(log.text()), 'the host name refusal logged');
    await elsewhere.close();
    assert.equal(registry.admits.filter((a) => a.identity.pcId === 'pc-h').length, 0);
  });

  it(`at most ${MAX_ADMISSIONS} admissions run at once; a connection beyond them is dropped, and admitted again once they end`, async () => {
    const id = await agentIdentity(dir, 'pc-many');
    const cert = await deviceCertificate(id.deviceKey, id.devicePublicPem, 'pc-many');
    const ca = await readFile(caFile, 'utf8');
    const capPort = await freePort();
    const capLog = captureLogger();
    const capped = await startLinkServer({ host: '127.0.0.1', port: capPort, tls: consoleTls, heartbeatSeconds: 1, consoleKey: TEST_CONSOLE_KEY, registry, logger: capLog.logger });
    // A socket that completes TLS with a device certificate, then never speaks HTTP/2: its admission waits for the identity.
    const dial = () =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: capPort, ca, key: id.deviceKey.export({ type: 'pkcs8', format: 'pem' }), cert, ALPNProtocols: [LINK_ALPN] });
        socket.on('data', () => undefined);
        socket.once('secureConnect', () => resolve(socket));
        socket.once('error', reject);
      });
    const closedWithin = (socket: tls.TLSSocket, ms: number) =>
      new Promise<boolean>((resolve) => {
        if (socket.destroyed || socket.readyState === 'closed') return resolve(true);
        const timer = setTimeout(() => resolve(false), ms);
        socket.once('close', () => (clearTimeout(timer), resolve(true)));
        socket.on('error', () => undefined);
      });
    try {
      const held: tls.TLSSocket[] = [];
      for (let i = 0; i < MAX_ADMISSIONS; i++) held.push(await dial());
      const over = await dial();
      assert.equal(await closedWithin(over, 2000), true, 'the connection over the cap is dropped');
      assert.match(capLog.text(), new RegExp(`${MAX_ADMISSIONS} admissions in flight; dropping new connections`));
      for (const socket of held) assert.equal(socket.destroyed, false, 'the admissions in flight are kept');
      for (const socket of held) socket.destroy();
      await until(() => /admission failed; dropped/.test(capLog.text()) && capLog.lines.filter((l) => /admission failed; dropped/.test(l.msg)).length >= MAX_ADMISSIONS, 'the held admissions ended');
      const again = await dial();
      assert.equal(await closedWithin(again, 500), false, 'below the cap again, a connection is admitted (it waits for its identity)');
      again.destroy();
    } finally {
      await capped.close();
    }
  });

  it('the console drops a socket without a device certificate', async () => {
    const ca = await readFile(caFile, 'utf8');
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: [LINK_ALPN] });
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await closed;
    // Had the console gone on, its HTTP/2 client would have sent its preface and asked for the identity.
    assert.equal(received, 0, 'nothing was sent to the socket');
    assert.match(consoleLog.text(), /without a device certificate/);
  });

  it('requests reach the agent\'s routes; a slow one times out; an offline PC is ERR_LINK_OFFLINE', async () => {
    const id = await agentIdentity(dir, 'pc-d');
    registry.tokens.set('pc-d', 'token-d');
    const routes: LinkRoutes = {
      [LINK_PATHS.takeoutDenial]: async (body) => ({ status: 200, body: { echo: body } }),
      [LINK_PATHS.takeoutKey]: () => new Promise(() => undefined),
    };
    const { link } = startAgent(id, 'pc-d', { token: 'token-d', routes });
    await until(() => link.connected && hub.isConnected('pc-d'), 'pc-d connected');
    assert.deepEqual(await hub.request('pc-d', LINK_PATHS.takeoutDenial, { a: 1 }), { status: 200, body: { echo: { a: 1 } } });
    assert.equal((await hub.request('pc-d', '/link/nowhere', {})).status, 404);
    await assert.rejects(hub.request('pc-d', LINK_PATHS.takeoutKey, {}, { timeoutMs: 300 }), { code: 'ERR_LINK_TIMEOUT' });
    await assert.rejects(hub.request('pc-nobody', LINK_PATHS.takeoutKey, {}), { code: 'ERR_LINK_OFFLINE', message: 'PC pc-nobody is not connected' });
    // The link is still fine after a timed-out request.
    assert.equal((await hub.request('pc-d', LINK_PATHS.takeoutDenial, 1)).status, 200);
  });

  it('a large answer does not hold up a small one on the same link', async () => {
    const id = await agentIdentity(dir, 'pc-e');
    registry.tokens.set('pc-e', 'token-e');
    const big = 'x'.repeat(900 * 1024);
    const routes: LinkRoutes = { [LINK_PATHS.takeoutKey]: async () => ({ status: 200, body: big }), [LINK_PATHS.takeoutDenial]: async () => ({ status: 204 }) };
    const { link } = startAgent(id, 'pc-e', { token: 'token-e', routes });
    await until(() => link.connected && hub.isConnected('pc-e'), 'pc-e connected');
    const order: string[] = [];
    await Promise.all([
      ...Array.from({ length: 5 }, () => hub.request('pc-e', LINK_PATHS.takeoutKey, {}).then(() => order.push('big'))),
      hub.request('pc-e', LINK_PATHS.takeoutDenial, {}).then(() => order.push('small')),
    ]);
    assert.notEqual(order.indexOf('small'), order.length - 1, `the small answer came before the large ones ended: ${order.join(',')}`);
  });

  it('heartbeats at the console\'s interval +-20 %, and statusChanged reports at once', async () => {
    const id = await agentIdentity(dir, 'pc-f');
    registry.tokens.set('pc-f', 'token-f');
    let gate: PcStatus['gate'] = 'online';
    const { link } = startAgent(id, 'pc-f', { token: 'token-f', status: async () => ({ ...STATUS, gate }) });
    await until(() => registry.statuses.filter((s) => s.pcId === 'pc-f').length >= 6, 'six statuses', 5000);
    const times = registry.statuses.filter((s) => s.pcId === 'pc-f').map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const gap of gaps) assert.ok(gap >= 0.8 * 300 - 30 && gap <= 1.2 * 300 + 80, `heartbeat gap ${gap} ms for 300 ms +-20 %: ${gaps.join(',')}`);
    assert.ok(new Set(gaps.map((g) => Math.round(g / 10))).size > 1, `the gaps are jittered: ${gaps.join(',')}`);
    // After six heartbeats the link holds one heartbeat timer, not a list of every one that fired (white box: a months-long link must not grow).
    const live = (link as unknown as { live: Record<string, unknown> }).live;
    assert.equal(live.timers, undefined, 'no list of timers');
    assert.ok(live.heartbeat !== undefined && typeof (live.heartbeat as NodeJS.Timeout).refresh === 'function', 'one heartbeat timer');
    gate = 'locked';
    const t0 = Date.now();
    link.statusChanged();
    await until(() => registry.statuses.some((s) => s.pcId === 'pc-f' && s.status.gate === 'locked'), 'the locked status');
    assert.ok(Date.now() - t0 < 150, 'the change came at once, not at the next heartbeat');
  });

  it('an unreachable console is dialed again with exponential backoff and full jitter, capped', async () => {
    // A listener that takes each connection and closes it at once: every attempt fails.
    const attempts: number[] = [];
    const listener = createServer((s: Socket) => {
      attempts.push(Date.now());
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const lport = (listener.address() as AddressInfo).port;
    const id = await agentIdentity(dir, 'pc-g');
    const log = captureLogger();
    const link = ConsoleLink.start({
      url: `https://127.0.0.1:${lport}`, caFile, pcId: 'pc-g', dataDir: id.dataDir, deviceKey: id.deviceKey, devicePublicPem: id.devicePublicPem,
      enrolmentToken: undefined, agentVersion: '1', status: async () => STATUS, routes: {}, logger: log.logger,
      random: () => 0.999, backoff: { baseMs: 100, capMs: 800 },
    });
    await until(() => attempts.length >= 7, 'seven attempts', 10_000);
    await link.stop();
    listener.close();
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    // random() ~ 1: the delays are the bounds themselves: 100, 200, 400, 800 (the cap), 800, 800.
    const expected = [100, 200, 400, 800, 800, 800];
    gaps.slice(0, 6).forEach((gap, i) => assert.ok(gap >= expected[i]! - 10 && gap <= expected[i]! + 150, `gap ${i} was ${gap} ms, expected ~${expected[i]} (${gaps.join(',')})`));
    assert.match(log.text(), /cannot reach the console/);
  });
});
