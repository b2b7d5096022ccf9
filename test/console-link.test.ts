/**
 * The link survives what happens to links, with real processes over real
 * sockets: the real `mydoc serve` dials a console link port (the real link
 * server in its own process, link-console-main.ts) through a TCP proxy.
 * A console restart, a cut link (the proxy closes everything and refuses
 * for a while) and a console that stops answering (SIGSTOP) are each
 * survived: the agent's user keeps reading and writing over WebDAV the
 * whole time, and the status reports resume. The reconnect backoff is
 * measured from the connection attempts the proxy sees.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTlsMaterial } from '../server/http/tls.js';
import { deviceIdOf } from '../server/link/device-identity.js';
import { dataFolder } from '../shares/data-folder.js';
import { tempDir } from './helpers/keys.js';
import { until } from './helpers/link-fakes.js';
import { startLinkConsole, startProxy, type CuttableProxy, type LinkConsole } from './helpers/link-console.js';
import { davRequest, freePort, startServer, type RunningServer } from './helpers/server.js';

const PC = 'pc-link';
const TOKEN = 'mydoc-enrol-test-0123456789abcdef';
const HEARTBEAT_SECONDS = 1;

describe('the agent keeps its console link through restarts, cuts and a hung console', { timeout: 170_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let consoleSettings: { port: number; certFile: string; keyFile: string; heartbeatSeconds: number };
  let linkConsole: LinkConsole;
  let proxy: CuttableProxy;
  let server: RunningServer;
  let deviceId: string;
  const dav = { ok: 0, failures: [] as string[], running: true, loop: Promise.resolve() };

  /** Status lines of the current console process after `since`. */
  const statusesSince = (since: number) => linkConsole.lines().filter((l) => l.type === 'status' && l.pcId === PC && l.at >= since);

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-link-proc-'));
    const material = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'console' });
    await mkdir(join(dir, 'console'));
    consoleSettings = { port: await freePort(), certFile: join(dir, 'console', 'cert.pem'), keyFile: join(dir, 'console', 'key.pem'), heartbeatSeconds: HEARTBEAT_SECONDS };
    await writeFile(consoleSettings.certFile, material.certPem);
    await writeFile(consoleSettings.keyFile, material.keyPem);
    linkConsole = await startLinkConsole({ ...consoleSettings, tokens: { [PC]: TOKEN } });
    proxy = await startProxy(consoleSettings.port);
    server = await startServer({
      pcId: PC,
      files: { 'console-ca.pem': material.caCertPem },
      extraConfig: ['console:', `  url: "https://127.0.0.1:${proxy.port}"`, '  caFile: console-ca.pem', `  enrolmentToken: "${TOKEN}"`],
    });
    deviceId = deviceIdOf(await readFile(dataFolder(server.dataDir).devicePublic, 'utf8'));
    // The user works the whole time: a write and a read back every 100 ms.
    dav.loop = (async () => {
      for (let i = 0; dav.running; i++) {
        const body = `version ${i}`;
        try {
          const put = await davRequest(server, 'PUT', '/notes.txt', { body });
          const get = await davRequest(server, 'GET', '/notes.txt');
          if (put.status >= 300 || get.status !== 200 || get.body.toString() !== body) dav.failures.push(`${put.status}/${get.status}`);
          else dav.ok++;
        } catch (err) {
          dav.failures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  });

  after(async () => {
    dav.running = false;
    await dav.loop;
    await server?.stop();
    await proxy?.close();
    try {
      process.kill(linkConsole.daemon.child.pid!, 'SIGCONT');
    } catch {
      // gone
    }
    await linkConsole?.stop();
    await cleanup();
  });

  it('enrols and reports its status with its users and version', async () => {
    await until(() => statusesSince(0).length > 0, 'the first status', 20_000);
    const status = statusesSince(0)[0]!.status!;
    assert.equal(status.gate, 'online');
    assert.match(status.agentVersion, /^\d+\.\d+\.\d+/);
    assert.match(server.output(), /console link: connected to .* \(this PC is now enrolled\)/);
    const marker = await readFile(dataFolder(server.dataDir).consoleEnrolment, 'utf8');
    assert.ok(!marker.includes(TOKEN));
  });

  it('comes back after a console restart, without the token, and reports again', async () => {
    await linkConsole.stop();
    const restarted = Date.now();
    // The restarted console knows the PC by its device only (the token was used once).
    linkConsole = await startLinkConsole({ ...consoleSettings, devices: { [PC]: deviceId } });
    await until(() => statusesSince(restarted).length > 0, 'a status after the restart', 30_000);
    await until(() => statusesSince(restarted).length >= 3, 'heartbeats after the restart', 10_000);
    // The user working over WebDAV has a session: the PC reports them.
    assert.ok(statusesSince(restarted).at(-1)!.status!.users.includes(server.user.name));
  });

  it('comes back after a cut link, dialing with exponential backoff and full jitter', async () => {
    const cutAt = Date.now();
    proxy.cut();
    await new Promise((r) => setTimeout(r, 9_000));
    const attempts = proxy.accepted.filter((t) => t >= cutAt);
    proxy.mend();
    const mendedAt = Date.now();
    await until(() => statusesSince(mendedAt).length > 0, 'a status after the cut', 40_000);
    // Attempt k comes at most base * 2^k after the one before it (base 1 s; the first counted from the cut).
    const gaps = attempts.map((t, k) => t - (k === 0 ? cutAt : attempts[k - 1]!));
    assert.ok(attempts.length >= 2, `the agent kept dialing (${attempts.length} attempts in 9 s)`);
    assert.ok(attempts.length <= 9, `the agent backs off (${attempts.length} attempts in 9 s: ${gaps.join(', ')} ms)`);
    gaps.forEach((gap, k) => assert.ok(gap <= 1000 * 2 ** k + 400, `attempt ${k} came ${gap} ms after the one before, over its bound of ${1000 * 2 ** k} ms (${gaps.join(', ')})`));
  });

  it('notices a console that stops answering (SIGSTOP), dials again, and reports once it answers', async () => {
    const pid = linkConsole.daemon.child.pid!;
    const before = server.output().length;
    process.kill(pid, 'SIGSTOP');
    try {
      await until(() => /has not answered for \d+ s; dialing again/.test(server.output().slice(before)), 'the agent noticing the hung console', 3 * HEARTBEAT_SECONDS * 1000 + 5000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const resumed = Date.now();
    await until(() => statusesSince(resumed).length > 0, 'a status after SIGCONT', 40_000);
  });

  it('served its user the whole time', async () => {
    dav.running = false;
    await dav.loop;
    assert.deepEqual(dav.failures, []);
    assert.ok(dav.ok > 50, `${dav.ok} write-and-read rounds`);
  });
});
