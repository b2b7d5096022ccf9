/**
 * Enrolment, with real processes: `mydoc console serve` and `mydoc serve`
 * agents dialing its link port. A token enrols once; a reused, expired or
 * wrong token, a second PC claiming an enrolled pcId with another key, a
 * removed PC, and an agent that does not pin the console's CA are each
 * refused with a clear message in the agent's log, and the console's audit
 * trail records each refusal it can attribute (a console the agent refuses
 * at the TLS handshake never hears who it was: it records no enrolment).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { consoleFolder } from '../server/console/data-folder.js';
import { createTlsMaterial } from '../server/http/tls.js';
import { launchDaemon, stopDaemon, type Daemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { until } from './helpers/link-fakes.js';
import { freePort, MYDOC_BIN, runCommand, startServer, type RunningServer } from './helpers/server.js';

const env = { ...process.env, MYDOC_CONSOLE_CONFIG: '', MYDOC_LOG_LEVEL: 'info' };
/** 0.01 h: a token expires 36 s after `pc add`. */
const TOKEN_HOURS = 0.01;

interface AuditRecord {
  action: string;
  target?: string;
  decision: string;
  reason?: string;
}

async function mydoc(args: string[]): Promise<string> {
  const r = await runCommand(process.execPath, [MYDOC_BIN, ...args], { env, timeoutMs: 60_000 });
  assert.equal(r.status, 0, `mydoc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function httpsOk(url: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    request(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    })
      .on('error', () => resolve(false))
      .end();
  });
}

/** The agent's log lines (pino JSON) as messages. */
const messages = (agent: RunningServer): string[] =>
  agent
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => String((JSON.parse(l) as { msg?: unknown }).msg ?? ''));

describe('enrolment on the console, with real processes', { timeout: 175_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  let ca: string;
  let linkPort: number;
  let consoleDaemon: Daemon;
  let expiringAddedAt: number;
  const tokens: Record<string, string> = {};
  const agents: RunningServer[] = [];

  const addPc = async (pcId: string) => {
    const out = await mydoc(['console', 'pc', 'add', pcId, '--config', config]);
    const match = /enrolmentToken: (\S+)\n/.exec(out);
    assert.ok(match, out);
    tokens[pcId] = match[1]!;
  };

  const startAgent = async (pcId: string, token: string | undefined, caPem = ca) => {
    const agent = await startServer({
      pcId,
      files: { 'console-ca.pem': caPem },
      extraConfig: ['console:', `  url: "https://127.0.0.1:${linkPort}"`, '  caFile: console-ca.pem', ...(token ? [`  enrolmentToken: "${token}"`] : [])],
    });
    agents.push(agent);
    return agent;
  };

  /** The agent was refused with `code`, and with no other code. */
  const refusedWith = async (agent: RunningServer, code: string) => {
    await until(() => messages(agent).some((m) => m.includes('refused this PC') && m.includes(`(${code})`)), `${agent.configFile}: a refusal ${code}`, 20_000);
    const refusals = messages(agent).filter((m) => m.includes('refused this PC'));
    assert.ok(refusals.every((m) => m.includes(`(${code})`)), `only ${code}: ${refusals.join('\n')}`);
  };

  const trail = async (): Promise<AuditRecord[]> =>
    (await readFile(consoleFolder(join(dir, 'console-data')).auditLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-enrol-'));
    const port = await freePort();
    linkPort = await freePort();
    config = join(dir, 'console.yaml');
    await writeFile(config, `dataDir: console-data\nlisten: { port: ${port}, linkPort: ${linkPort} }\ndirectory: { kind: local }\nroles: { viewer: [admins] }\nlink: { heartbeatSeconds: 1 }\nenrolment: { tokenHours: ${TOKEN_HOURS} }\n`);
    await mydoc(['console', 'init', '--config', config]);
    ca = await readFile(consoleFolder(join(dir, 'console-data')).tls.caFile, 'utf8');
    consoleDaemon = await launchDaemon({
      name: 'mydoc console serve',
      command: process.execPath,
      args: [MYDOC_BIN, 'console', 'serve', '--config', config],
      env,
      ready: () => httpsOk(`https://127.0.0.1:${port}/healthz`, ca),
      readyTimeoutMs: 30_000,
      where: `https://127.0.0.1:${port}/healthz`,
      graceMs: 10_000,
    });
    // Added first: its token has expired by the time its agent dials (the last test).
    await addPc('pc-expiring');
    expiringAddedAt = Date.now();
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    if (consoleDaemon) await stopDaemon(consoleDaemon, 10_000);
    await cleanup();
  });

  it('a token enrols its PC once; the same token again, from another key, is refused', async () => {
    await addPc('pc-1');
    const agent = await startAgent('pc-1', tokens['pc-1']);
    await until(() => messages(agent).some((m) => /connected to .*\(this PC is now enrolled\)/.test(m)), 'pc-1 enrolled', 20_000);
    const copy = await startAgent('pc-1', tokens['pc-1']);
    await refusedWith(copy, 'ERR_ENROL_USED');
    assert.ok(messages(copy).some((m) => /refused this PC: the enrolment token of PC pc-1 was used already/.test(m)), messages(copy).join('\n'));
    const records = await trail();
    assert.ok(records.some((r) => r.action === 'pc.enrol' && r.target === 'pc-1' && r.decision === 'allow'));
    assert.ok(records.some((r) => r.action === 'pc.enrol' && r.target === 'pc-1' && r.decision === 'deny' && /^ERR_ENROL_USED: /.test(r.reason ?? '')));
    assert.ok(!(await trail()).some((r) => JSON.stringify(r).includes(tokens['pc-1']!)), 'the token is not in the trail');
  });

  it('a second PC claiming an enrolled pcId with another key and no token is refused', async () => {
    const other = await startAgent('pc-1', undefined);
    await refusedWith(other, 'ERR_LINK_WRONG_DEVICE');
    assert.ok(messages(other).some((m) => /PC pc-1 is enrolled with another device key/.test(m)));
    assert.ok((await trail()).some((r) => r.action === 'pc.connect' && r.target === 'pc-1' && r.decision === 'deny' && /^ERR_LINK_WRONG_DEVICE: /.test(r.reason ?? '')));
  });

  it('a second PC claiming an enrolled pcId with another key and a token that is not pc-1\'s is refused as taken', async () => {
    const guess = await startAgent('pc-1', 'not-a-token-of-this-console');
    await refusedWith(guess, 'ERR_ENROL_TAKEN');
    assert.ok(messages(guess).some((m) => /PC pc-1 is enrolled with another device key/.test(m)));
    assert.ok((await trail()).some((r) => r.action === 'pc.enrol' && r.target === 'pc-1' && r.decision === 'deny' && /^ERR_ENROL_TAKEN: /.test(r.reason ?? '')));
  });

  it('a wrong token is refused', async () => {
    await addPc('pc-2');
    const agent = await startAgent('pc-2', `mydoc-enrol-${'B'.repeat(43)}`);
    await refusedWith(agent, 'ERR_ENROL_UNKNOWN');
    assert.ok((await trail()).some((r) => r.action === 'pc.enrol' && r.target === 'pc-2' && r.decision === 'deny' && /^ERR_ENROL_UNKNOWN: /.test(r.reason ?? '')));
  });

  it('an agent that does not pin the console\'s CA refuses the console, which enrols nothing', async () => {
    await addPc('pc-3');
    const otherCa = (await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'elsewhere' })).caCertPem;
    const agent = await startAgent('pc-3', tokens['pc-3'], otherCa);
    await until(() => messages(agent).some((m) => /refusing the console at https:\/\/127\.0\.0\.1:\d+: its certificate does not chain to console\.caFile/.test(m)), 'the CA refusal', 20_000);
    assert.ok(!(await trail()).some((r) => r.target === 'pc-3' && r.action.startsWith('pc.enrol')), 'the console never heard from pc-3');
    assert.match(await mydoc(['console', 'pc', 'list', '--config', config]), /^pc-3\s+not enrolled/m);
  });

  it('a removed PC is dropped at once and refused at its next handshake', async () => {
    const agent = agents[0]!;
    await mydoc(['console', 'pc', 'remove', 'pc-1', '--config', config]);
    await refusedWith(agent, 'ERR_ENROL_REMOVED');
    assert.ok(messages(agent).some((m) => /the link to .* is down/.test(m)));
    assert.ok((await trail()).some((r) => r.action === 'pc.connect' && r.target === 'pc-1' && r.decision === 'deny' && /^ERR_ENROL_REMOVED: /.test(r.reason ?? '')));
  });

  it('an expired token is refused', async () => {
    const wait = expiringAddedAt + TOKEN_HOURS * 3_600_000 + 1500 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const agent = await startAgent('pc-expiring', tokens['pc-expiring']);
    await refusedWith(agent, 'ERR_ENROL_EXPIRED');
    assert.ok(messages(agent).some((m) => /token of PC pc-expiring has expired/.test(m)));
    assert.ok((await trail()).some((r) => r.action === 'pc.enrol' && r.target === 'pc-expiring' && r.decision === 'deny' && /^ERR_ENROL_EXPIRED: /.test(r.reason ?? '')));
  });

  it('the trail verifies', async () => {
    assert.match(await mydoc(['console', 'audit', 'verify', '--config', config]), /^console audit trail OK/);
  });
});
