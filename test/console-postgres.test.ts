/**
 * A real `mydoc console serve` on a real PostgreSQL (test/helpers/postgres.ts):
 * PostgreSQL down at start is a one-line error naming host:port; lost at run
 * time, the web page answers 503 with a sentence saying so and the process
 * stays up; back again, the same console works without a restart.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { consoleFolder } from '../server/console/data-folder.js';
import { LocalUsersFile } from '../policy/directory/local/users-file.js';
import { launchDaemon, stopDaemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { startPostgres } from './helpers/postgres.js';
import { freePort, MYDOC_BIN, runCommand } from './helpers/server.js';

const env = { ...process.env, MYDOC_CONSOLE_CONFIG: '', MYDOC_LOG_LEVEL: 'warn' };

function mydoc(args: string[]) {
  return runCommand(process.execPath, [MYDOC_BIN, ...args], { env, timeoutMs: 60_000 });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function https(port: number, ca: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, method, path, ca, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    })
      .on('error', reject)
      .end(body);
  });
}

const cookieOf = (a: Answer): string => {
  const set = [a.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('__Host-mydoc-console='));
  assert.ok(set, 'a session cookie');
  return set.split(';')[0]!;
};

test('console serve on PostgreSQL: down at start is a clear error; lost at run time the page answers 503 and the console stays up; back, it works without a restart', { timeout: 180_000 }, async () => {
  const { dir, cleanup } = await tempDir('mydoc-console-pg-');
  const pg = await startPostgres();
  try {
    await pg.createDatabase('console');
    await writeFile(join(dir, 'pg.pw'), `${pg.password}\n`, { mode: 0o600 });
    const ports = { port: await freePort(), linkPort: await freePort() };
    const configFor = async (pgPort: number, name: string) => {
      const file = join(dir, name);
      await writeFile(
        file,
        `dataDir: console-data\nlisten: { port: ${ports.port}, linkPort: ${ports.linkPort} }\ndirectory: { kind: local }\nroles: { viewer: [admins] }\n` +
          `store: { kind: postgres, postgres: { host: 127.0.0.1, port: ${pgPort}, database: console, user: ${pg.user}, passwordFile: pg.pw } }\n`,
      );
      return file;
    };
    const config = await configFor(pg.port, 'console.yaml');
    const init = await mydoc(['console', 'init', '--config', config]);
    assert.equal(init.status, 0, init.stderr);
    const paths = consoleFolder(join(dir, 'console-data'));
    const users = new LocalUsersFile(paths.usersFile);
    await users.add('ada', 'ada-password-1');
    await users.setGroup('admins', { users: ['ada'] });

    // (a) PostgreSQL down at start: exits non-zero, one line naming host:port.
    const downPort = await freePort();
    const down = await mydoc(['console', 'serve', '--config', await configFor(downPort, 'down.yaml')]);
    assert.notEqual(down.status, 0);
    assert.match(down.stderr, new RegExp(`^mydoc: .*PostgreSQL at 127\\.0\\.0\\.1:${downPort} does not answer`, 'm'), down.stderr);
    assert.doesNotMatch(down.stderr, /internal error|    at |ada-password|${pg.password}/);

    // (b) Running: log in on the page and list PCs.
    assert.equal((await mydoc(['console', 'pc', 'add', 'pc-1', '--config', config])).status, 0);
    const ca = await readFile(paths.tls.caFile, 'utf8');
    const daemon = await launchDaemon({
      name: 'mydoc console serve',
      command: process.execPath,
      args: [MYDOC_BIN, 'console', 'serve', '--config', config],
      env,
      ready: () => https(ports.port, ca, 'GET', '/healthz').then((r) => r.status === 200, () => false),
      readyTimeoutMs: 30_000,
      where: `https://127.0.0.1:${ports.port}/healthz`,
      graceMs: 10_000,
    });
    try {
      const form = await https(ports.port, ca, 'GET', '/admin/login');
      const formCookie = cookieOf(form);
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1];
      assert.ok(csrf, 'the login form carries a CSRF token');
      const login = await https(
        ports.port,
        ca,
        'POST',
        '/admin/login',
        { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ csrf, name: 'ada', password: 'ada-password-1' }).toString(),
      );
      assert.equal(login.status, 303, login.body);
      const cookie = cookieOf(login);
      const list = () => https(ports.port, ca, 'GET', '/admin/pcs', { cookie });
      const before = await list();
      assert.equal(before.status, 200);
      assert.match(before.body, /pc-1/);

      // PostgreSQL lost: 503 with a sentence naming it, on a readable page; the process stays up.
      await pg.stop({ keepData: true });
      const lost = await list();
      assert.equal(lost.status, 503, lost.body);
      assert.match(String(lost.headers['content-type']), /text\/html/);
      assert.match(lost.body, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${pg.port} does not answer`));
      assert.doesNotMatch(lost.body, /internal error/);
      assert.equal(daemon.child.exitCode, null, `the console is still running: ${daemon.output()}`);
      assert.equal((await https(ports.port, ca, 'GET', '/healthz')).status, 200, 'and answers');

      // PostgreSQL back: the same console works again.
      await pg.start();
      let again = await list();
      for (let i = 0; i < 50 && again.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 200));
        again = await list();
      }
      assert.equal(again.status, 200, again.body);
      assert.match(again.body, /pc-1/);
    } finally {
      await stopDaemon(daemon, 10_000);
    }
  } finally {
    await pg.stop();
    await cleanup();
  }
});
