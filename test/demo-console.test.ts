/**
 * `mydoc demo` (npm start) brings up a console beside the demo agent, as a
 * real process: the PC enrols by itself over the link, both URLs and both
 * passwords are printed, and the demo user's take-out request, asked on the
 * agent, is seen and approved by the demo administrator on the console.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchDaemon, stopDaemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { basicAuth, freePort, MYDOC_BIN, runCommand } from './helpers/server.js';

function call(url: string, ca: string, auth: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, ca, headers: { ...(auth ? { authorization: auth } : {}), ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('the demo: a console beside the agent, the PC enrolled by itself, a take-out asked on the agent and approved on the console', async () => {
  const { dir, cleanup } = await tempDir('mydoc-demo-console-');
  try {
    const port = await freePort();
    const consolePort = await freePort();
    const demoDir = join(dir, 'demo');
    const agentCaFile = join(demoDir, 'data', 'tls', 'ca-cert.pem');
    const serving = async (): Promise<boolean> => {
      const ca = await readFile(agentCaFile, 'utf8').catch(() => undefined);
      if (ca === undefined) return false;
      return call(`https://127.0.0.1:${port}/healthz`, ca, '').then((r) => r.status === 200, () => false);
    };
    const daemon = await launchDaemon({
      name: 'mydoc demo',
      command: process.execPath,
      args: [MYDOC_BIN, 'demo', '--dir', demoDir, '--port', String(port), '--console-port', String(consolePort)],
      env: { ...process.env, MYDOC_CONFIG: '', MYDOC_CONSOLE_CONFIG: '' },
      ready: serving,
      readyTimeoutMs: 60_000,
      where: `https://127.0.0.1:${port}/healthz`,
      graceMs: 20_000,
    });
    try {
      const out = daemon.output();
      const userPassword = /user: +demo +password: (\S+)/.exec(out)?.[1];
      const adminPassword = /console administrator: admin +password: (\S+)/.exec(out)?.[1];
      assert.ok(userPassword && adminPassword, out);
      assert.match(out, new RegExp(`the console's page https://127\\.0\\.0\\.1:${consolePort}/`));
      assert.match(out, new RegExp(`mydoc: serving https://127\\.0\\.0\\.1:${port}/`));
      const agentCa = await readFile(agentCaFile, 'utf8');
      const consoleCa = await readFile(join(demoDir, 'console', 'tls', 'ca.pem'), 'utf8');
      const consoleConfig = join(demoDir, 'console.yaml');
      // The console's own page is served at its URL.
      const page = await call(`https://127.0.0.1:${consolePort}/`, consoleCa, '');
      assert.equal(page.status, 303);
      assert.equal((await call(`https://127.0.0.1:${consolePort}/admin/login`, consoleCa, '')).status, 200);

      // The PC enrols at its first link and reports its status.
      const deadline = Date.now() + 30_000;
      let list = '';
      while (!/^demo-pc\s+online\s+/m.test(list)) {
        assert.ok(Date.now() < deadline, `demo-pc never came online:\n${list}\n${daemon.output()}`);
        await sleep(200);
        list = (await runCommand(process.execPath, [MYDOC_BIN, 'console', 'pc', 'list', '--config', consoleConfig], { timeoutMs: 30_000 })).stdout;
      }

      // The user asks on the agent; the request goes up the link.
      const asked = await call(`https://127.0.0.1:${port}/api/takeout/requests`, agentCa, basicAuth('demo', userPassword), 'POST', { days: 3, reason: 'a trip' });
      assert.equal(asked.status, 201, JSON.stringify(asked.body));
      const admin = basicAuth('admin', adminPassword);
      assert.equal((await call(`https://127.0.0.1:${consolePort}/api/takeout/requests?state=pending`, consoleCa, basicAuth('admin', 'wrong password'))).status, 401);
      let pending: { id: string; user: string; pcId: string }[] = [];
      while (pending.length === 0) {
        assert.ok(Date.now() < deadline, 'the request never reached the console');
        await sleep(200);
        const listed = await call(`https://127.0.0.1:${consolePort}/api/takeout/requests?state=pending`, consoleCa, admin);
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        pending = listed.body.requests;
      }
      assert.equal(pending[0]!.user, 'demo');
      assert.equal(pending[0]!.pcId, 'demo-pc');
      const approved = await call(`https://127.0.0.1:${consolePort}/api/takeout/requests/${pending[0]!.id}/approval`, consoleCa, admin, 'POST', { days: 3 });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'approved');
      const status = await call(`https://127.0.0.1:${port}/api/takeout/status`, agentCa, basicAuth('demo', userPassword));
      // The agent installed the key the console signed: the user sees it, valid, for the days approved.
      assert.equal(status.status, 200);
      assert.equal(status.body.key?.valid, true, JSON.stringify(status.body));
      assert.ok(Math.abs(status.body.key.remainingSeconds - 3 * 86400) < 600, JSON.stringify(status.body));
      // Every PC's data as one tree: the demo PC under /pcs/, as the demo administrator.
      assert.match(out, new RegExp(`https://127\\.0\\.0\\.1:${consolePort}/pcs/`));
      const pcs = await call(`https://127.0.0.1:${consolePort}/pcs/`, consoleCa, admin);
      assert.equal(pcs.status, 200, String(pcs.body));
      assert.match(String(pcs.body), /demo-pc/);
    } finally {
      await stopDaemon(daemon, 20_000);
    }
  } finally {
    await cleanup();
  }
});
