/**
 * The SMB backup target against a real smbd on 127.0.0.1 (test/helpers/smbd.ts): the shared
 * target contract, then how connection failures, bad credentials files and a full share are
 * reported.
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SmbTarget, parseListing } from '../backup/smb-target.js';
import { TargetError } from '../backup/target.js';
import { patternBytes, tempDir } from './helpers/keys.js';
import { freePort, randomPassword } from './helpers/server.js';
import { startSmbd, type Smbd } from './helpers/smbd.js';
import { expectCode } from './helpers/expect-code.js';
import { targetContract } from './helpers/target-contract.js';

const MiB = 1024 * 1024;

// The target's root is a folder two levels down in the share, which does not exist yet.
targetContract('smb', async () => {
  const smbd = await startSmbd();
  const target = await SmbTarget.open({ url: `${smbd.url}/backups/pc1`, authFile: smbd.authFile, port: smbd.port });
  return {
    target,
    cleanup: () => smbd.stop(),
    plant: async (path, data) => {
      const file = join(smbd.shareDir, 'backups', 'pc1', path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, data);
      // As if the share's user had left it: smbd acts as that user.
      const owned = spawnSync('chown', ['-R', smbd.user, join(smbd.shareDir, 'backups')]);
      if (owned.status !== 0) throw new Error(`chown failed: ${owned.stderr}`);
    },
  };
});

describe('SMB target: connecting and errors', () => {
  let smbd: Smbd;
  let dir: string;
  let cleanupDir: () => Promise<void>;

  before(async () => {
    smbd = await startSmbd();
    ({ dir, cleanup: cleanupDir } = await tempDir('mydoc-smb-test-'));
  });
  after(async () => {
    await smbd?.stop();
    await cleanupDir?.();
  });

  it('describes itself without credentials', async () => {
    const target = await SmbTarget.open({ url: `${smbd.url}/x`, authFile: smbd.authFile, port: smbd.port });
    assert.equal(target.description, '//127.0.0.1/nas/x');
  });

  it('reports a wrong password as ERR_TARGET_AUTH, without the password', async () => {
    const password = randomPassword();
    const authFile = join(dir, 'wrong-auth');
    await writeFile(authFile, `username = ${smbd.user}\npassword = ${password}\ndomain = WORKGROUP\n`, { mode: 0o600 });
    const error = await expectCode(SmbTarget.open({ url: smbd.url, authFile, port: smbd.port }), 'ERR_TARGET_AUTH', TargetError);
    assert.match(error.message, /refused the user name or password in .*wrong-auth/);
    assert.ok(!error.message.includes(password) && !String(error.stack).includes(password), error.message);
    assert.ok(!error.message.includes(smbd.password));
  });

  it('reports a missing share as ERR_TARGET_NO_SHARE', async () => {
    const error = await expectCode(SmbTarget.open({ url: '//127.0.0.1/no-such-share', authFile: smbd.authFile, port: smbd.port }), 'ERR_TARGET_NO_SHARE', TargetError);
    assert.match(error.message, /no-such-share/);
  });

  it('reports a server nobody listens on as ERR_TARGET_UNREACHABLE, quickly', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await expectCode(SmbTarget.open({ url: smbd.url, authFile: smbd.authFile, port }), 'ERR_TARGET_UNREACHABLE', TargetError);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    assert.match(error.message, new RegExp(`cannot reach the SMB server //127.0.0.1/nas \\(port ${port}\\)`));
  });

  it('gives up on a server that never answers after timeoutSeconds (ERR_TARGET_UNREACHABLE)', async () => {
    const silent: Server = createServer(() => {}); // accepts and says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await expectCode(SmbTarget.open({ url: smbd.url, authFile: smbd.authFile, port, timeoutSeconds: 1 }), 'ERR_TARGET_UNREACHABLE', TargetError);
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
      assert.match(error.message, /did not answer within 1 s|cannot reach/);
    } finally {
      silent.close();
    }
  });

  it('refuses an auth file others can read, a missing one, or one without a password', async () => {
    const open = (authFile: string) => SmbTarget.open({ url: smbd.url, authFile, port: smbd.port });
    const loose = join(dir, 'loose-auth');
    await copyFile(smbd.authFile, loose);
    await chmod(loose, 0o644);
    const error = await expectCode(open(loose), 'ERR_TARGET_AUTH', TargetError);
    assert.match(error.message, /mode 0644.*chmod 600/);
    await expectCode(open(join(dir, 'no-such-auth')), 'ERR_TARGET_AUTH', TargetError);
    const noPassword = join(dir, 'no-password');
    await writeFile(noPassword, `username = ${smbd.user}\n`, { mode: 0o600 });
    await expectCode(open(noPassword), 'ERR_TARGET_AUTH', TargetError);
  });

  it('refuses URLs that are not //host/share[/folder]', async () => {
    for (const url of ['smb://127.0.0.1/nas', '//127.0.0.1', '//127.0.0.1/nas/../x', '//127.0.0.1/nas/a;b']) {
      await expectCode(SmbTarget.open({ url, authFile: smbd.authFile, port: smbd.port }), 'ERR_TARGET_IO', TargetError);
    }
  });
});

describe('SMB target: a full share', () => {
  let smbd: Smbd;
  let dir: string;
  let cleanupDir: () => Promise<void>;

  before(async () => {
    smbd = await startSmbd({ quotaBytes: MiB });
    ({ dir, cleanup: cleanupDir } = await tempDir('mydoc-smb-full-'));
  });
  after(async () => {
    await smbd?.stop();
    await cleanupDir?.();
  });

  it('fails with ERR_TARGET_FULL, leaves no partial file and stops the batch there', async () => {
    const target = await SmbTarget.open({ url: smbd.url, authFile: smbd.authFile, port: smbd.port });
    const small = join(dir, 'small');
    const big = join(dir, 'big');
    await writeFile(small, 'small');
    await writeFile(big, patternBytes(2 * MiB));
    const error = await expectCode(
      target.upload([
        { local: small, remote: 'objects/first' },
        { local: big, remote: 'objects/big' },
        { local: small, remote: 'objects/after' },
      ]),
      'ERR_TARGET_FULL',
      TargetError,
    );
    assert.match(error.message, /full.*objects\/big/);
    assert.deepEqual(
      (await target.list('')).map((f) => f.path),
      ['objects/first'],
    );
    assert.equal(await target.stat('objects/big'), undefined);
    // The partial temporary file was deleted: the space is free again.
    await target.writeFile('objects/later', patternBytes(512 * 1024));
    assert.equal((await target.stat('objects/later'))?.size, 512 * 1024);
  });
});

describe('SMB target: listing parser', () => {
  it('parses recursive smbclient ls output (long names, hidden temporary files, subfolders)', () => {
    const output = [
      '  .                                   D        0  Thu Nov 26 09:39:48 2026',
      '  ..                                  D        0  Thu Nov 26 09:39:48 2026',
      '  sub                                 D        0  Thu Nov 26 09:39:48 2026',
      '  .tmp-abc                            H        2  Thu Nov 26 09:39:48 2026',
      '  a                                   N        2  Thu Nov  6 09:39:48 2026',
      '  name with spaces and a very long name beyond thirty chars      N        2  Fri Jan  2 00:00:01 2026',
      '',
      '\\root\\t\\sub',
      '  .                                   D        0  Thu Nov 26 09:39:48 2026',
      '  ..                                  D        0  Thu Nov 26 09:39:48 2026',
      '  b                                  AN  1234567  Thu Nov 26 09:39:48 2026',
      '',
      '\t\t264212084 blocks of size 1024. 82673652 blocks available',
      '',
    ].join('\n');
    assert.deepEqual(parseListing(output, '\\root\\t'.slice(1)), [
      { path: 'a', size: 2, mtimeMs: Date.UTC(2026, 10, 6, 9, 39, 48) },
      { path: 'name with spaces and a very long name beyond thirty chars', size: 2, mtimeMs: Date.UTC(2026, 0, 2, 0, 0, 1) },
      { path: 'sub/b', size: 1234567, mtimeMs: Date.UTC(2026, 10, 26, 9, 39, 48) },
    ]);
  });
});
