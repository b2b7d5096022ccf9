/**
 * Volume through the console, with real processes (a console and one agent,
 * test/helpers/console-fleet.ts): a 1 GiB file streams through the console
 * to curl with the console's memory bounded (its VmRSS sampled from
 * /proc/<pid>/status every 50 ms while curl downloads stays under 200 MiB,
 * and so does what it grew by) and the SHA-256 matching; rclone copies a
 * whole PC (/pcs/<pcId>/: both users' trees, the virtual level and what is
 * forwarded below it) and `rclone check` finds no difference; an agent
 * that goes away in the middle of two downloads (one client reading, one
 * slow) ends both short at once (never a hang) and the next request is a
 * 503 at once.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rssOf, sampleRss, startConsoleFleet, type ConsoleFleet } from './helpers/console-fleet.js';
import { basicAuth, runCommand } from './helpers/server.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
const RSS_LIMIT_KIB = 200 * 1024;

async function listTree(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTree(root, p)));
    else out.push(relative(root, p));
  }
  return out.sort();
}

describe('volume through the console', { timeout: 900_000 }, () => {
  let fleet: ConsoleFleet;
  let bigSha: string;

  before(async () => {
    fleet = await startConsoleFleet({ pcs: [{ pcId: 'pc-1', users: ['alice', 'bob'] }] });
  });
  after(async () => {
    await fleet?.stop();
  });

  it('streams a 1 GiB file through the console with its memory bounded; the bytes match', async (t) => {
    // The file: written once (random 1 MiB blocks), PUT on the agent directly by its user.
    const source = join(fleet.dir, 'big.bin');
    const hash = createHash('sha256');
    const fh = await open(source, 'w');
    for (let done = 0; done < GiB; done += MiB) {
      const block = randomBytes(MiB);
      hash.update(block);
      await fh.write(block);
    }
    await fh.close();
    bigSha = hash.digest('hex');
    const alice = fleet.pc('pc-1').user('alice');
    const server = fleet.pc('pc-1').server;
    const put = await runCommand('curl', ['--silent', '--show-error', '--http1.1', '--cacert', server.caFile, '--noproxy', '*', '-K', '-', '-T', source, '-H', 'Expect:', '-o', '/dev/null', '-w', '%{http_code}', `${server.url}Documents/big.bin`], {
      input: `user = "${alice.name}:${alice.password}"\n`,
      timeoutMs: 600_000,
    });
    assert.equal(put.status, 0, put.stderr);
    assert.match(put.stdout, /^20[14]$/);

    const pid = fleet.consolePid()!;
    const before = (await rssOf(pid))!;
    const sampler = sampleRss(pid, 50);
    const got = await fleet.curlDownload(fleet.admin('data'), '/pcs/pc-1/alice/Documents/big.bin', { timeoutMs: 600_000 }).catch(async (err: unknown) => {
      await sampler.stop();
      throw err;
    });
    const memory = await sampler.stop();
    assert.equal(got.status, 200, got.stderr);
    assert.equal(got.bytes, GiB);
    assert.equal(got.sha256, bigSha, 'the bytes through the console are the file\'s');
    assert.ok(memory.samples > 10, `only ${memory.samples} RSS samples`);
    const info = `console VmRSS before ${before.rssKiB} KiB, peak while downloading ${memory.peakKiB} KiB (${memory.samples} samples), ${(GiB / 1e6 / got.seconds).toFixed(0)} MB/s`;
    t.diagnostic(info);
    assert.ok(memory.peakKiB < RSS_LIMIT_KIB, info);
    assert.ok(memory.peakKiB - before.rssKiB < 128 * 1024, `the console grew by more than 128 MiB: ${info}`);
  });

  it('a HEAD through the console gives the length without a body; a range gives the bytes asked for', async () => {
    const dana = fleet.admin('data');
    const head = await fleet.consoleRequest('HEAD', '/pcs/pc-1/alice/Documents/big.bin', { as: dana });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), GiB);
    assert.equal(head.body.length, 0);
    const start = GiB - 1000;
    const ranged = await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/big.bin', { as: dana, headers: { range: `bytes=${start}-` } });
    assert.equal(ranged.status, 206);
    const expected = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      createReadStream(join(fleet.dir, 'big.bin'), { start }).on('data', (c) => chunks.push(c as Buffer)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
    });
    assert.deepEqual(ranged.body, expected);
  });

  it('rclone copies a whole PC through the console and rclone check finds no difference', async () => {
    // Each user's tree, made on the agent directly as that user.
    const planted: Record<string, Buffer> = {};
    const plant = async (user: string, path: string, body: Buffer) => {
      const folders = path.split('/').slice(1, -1);
      for (let i = 2; i <= folders.length; i++) {
        const r = await fleet.agentRequest('pc-1', user, 'MKCOL', `/${folders.slice(0, i).map(encodeURIComponent).join('/')}/`);
        assert.ok(r.status === 201 || r.status === 405, `MKCOL ${r.status}`);
      }
      const res = await fleet.agentRequest('pc-1', user, 'PUT', path.split('/').map(encodeURIComponent).join('/'), { body });
      assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status}`);
      planted[`${user}${path}`] = body;
    };
    await plant('alice', '/Documents/reports/2026/q1 résumé.txt', Buffer.from('alice q1\n'));
    await plant('alice', '/Desktop/notes #1.txt', randomBytes(70_000));
    await plant('bob', '/Documents/plans/日本語 plan.bin', randomBytes(300_000));
    await plant('bob', '/Documents/empty.txt', Buffer.alloc(0));

    const local = join(fleet.dir, 'rclone-copy');
    await mkdir(local);
    const remote = { url: `${fleet.url}/pcs/pc-1/`, caFile: fleet.caFile };
    const dana = fleet.admin('data');
    // Everything but the 1 GiB file of the test above (it has been checked already).
    const filter = ['--exclude', '/alice/Documents/big.bin'];
    const copy = await fleet.rclone(dana, ['copy', ':webdav:', local, ...filter], remote);
    assert.equal(copy.status, 0, copy.stderr);
    const check = await fleet.rclone(dana, ['check', ':webdav:', local, ...filter], remote);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stderr, /: 0 differences found/);
    assert.deepEqual(await listTree(local), Object.keys(planted).sort());
    for (const [path, body] of Object.entries(planted)) {
      const file = join(local, ...path.split('/'));
      assert.equal((await stat(file)).size, body.length, path);
      assert.ok((await readFile(file)).equals(body), path);
    }
  });

  it('an agent that goes away mid-download: both a reading and a slow client see the download end short at once; the next request is 503 at once', { timeout: 90_000 }, async () => {
    const dana = fleet.admin('data');
    type Outcome = { bytes: number; ended: 'end' | 'error' | 'still open'; afterStopMs: number };
    const agentGone = { at: 0, promise: undefined as Promise<void> | undefined };
    /** One download; `slow` pauses it once 8 MiB arrived, until the agent is stopped (its backpressure fills the console's relay). */
    const download = (slow: boolean) =>
      new Promise<Outcome>((resolve, reject) => {
        let bytes = 0;
        const finish = (ended: Outcome['ended']) => {
          clearInterval(watchdog);
          resolve({ bytes, ended, afterStopMs: agentGone.at === 0 ? -1 : Date.now() - agentGone.at });
        };
        // Not ended 15 s after the agent is gone: a hang (the client is cut here, so the test fails in time, not at its timeout).
        const watchdog = setInterval(() => {
          if (agentGone.at > 0 && Date.now() - agentGone.at > 15_000) {
            finish('still open');
            req.destroy();
          }
        }, 200);
        const req = https.request(`${fleet.url}/pcs/pc-1/alice/Documents/big.bin`, { ca: fleet.caPem, agent: false, headers: { authorization: basicAuth(dana.name, dana.password) } }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`GET answered ${res.statusCode}`));
          let paused = false;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            if (slow && !paused && bytes >= 8 * MiB) {
              paused = true;
              res.pause();
              void (async () => {
                while (!agentGone.promise) await new Promise((r) => setTimeout(r, 50));
                await agentGone.promise;
                res.resume();
              })();
            }
            if (!slow && agentGone.at === 0 && bytes >= 32 * MiB) {
              agentGone.at = Date.now();
              // Killed, not stopped: a stopping agent serves on during its shutdown backup, long enough to finish the file.
              agentGone.promise = fleet.killAgent('pc-1');
              agentGone.promise.catch(reject);
            }
          });
          res.once('end', () => finish('end'));
          res.once('error', () => finish('error'));
          res.once('aborted', () => finish('error'));
        });
        req.on('error', () => finish('error'));
        req.end();
      });
    const [reading, slow] = await Promise.all([download(false), download(true)]);
    for (const [name, o] of [['reading', reading], ['slow', slow]] as const) {
      assert.ok(o.bytes < GiB, `${name}: the whole file arrived (${o.bytes} bytes) from an agent that was stopped`);
      assert.notEqual(o.ended, 'still open', `${name} client: the download was still open ${o.afterStopMs} ms after the agent was stopped, with ${o.bytes} of ${GiB} bytes: a hang`);
    }
    const started = Date.now();
    const next = await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/big.bin', { as: dana });
    assert.equal(next.status, 503, next.body.toString());
    assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
    assert.match(next.body.toString(), /PC pc-1 .*last seen/);
    // The console itself is unharmed.
    assert.equal((await fleet.consoleRequest('GET', '/healthz', { as: null })).status, 200);
  });
});
