import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { Vault } from '../shares/vault/vault.js';
import { VaultError } from '../shares/vault/errors.js';
import { NOTICE_LIMIT } from '../shares/vault/notice-log.js';
import type { AccessNotice } from '../shares/vault/notices.js';
import { indexKeyHex } from '../crypto/index-key.js';
import { randomDataKey, tempDir } from './helpers/keys.js';

function notice(i: number, over: Partial<AccessNotice> = {}): AccessNotice {
  return {
    time: 1_700_000_000_000 + i * 1000,
    actor: `admin${i}`,
    kind: i % 2 ? 'share' : 'admin',
    via: i % 2 ? `share rule r${i}` : 'data',
    method: 'GET',
    path: `/Documents/file-${i}.txt`,
    requestId: `req-${i}`,
    decision: i % 3 ? 'allow' : 'deny',
    ...over,
  };
}

test('notices are kept in the vault and listed newest first, survive a reopen, and the limit is applied', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  try {
    let vault = await Vault.open(dir, dek);
    assert.deepEqual(vault.notices(), []);
    for (let i = 0; i < 5; i++) vault.addNotice(notice(i));
    // Recorded order wins over the times in the notices (an agent clock may step back).
    vault.addNotice(notice(5, { time: 1 }));
    const all = vault.notices();
    assert.deepEqual(all.map((n) => n.requestId), ['req-5', 'req-4', 'req-3', 'req-2', 'req-1', 'req-0']);
    assert.deepEqual(all[1], notice(4));
    assert.deepEqual(vault.notices(2).map((n) => n.requestId), ['req-5', 'req-4']);
    assert.deepEqual(vault.notices(0), []);
    assert.equal(vault.notices(-3).length, 0);
    assert.equal(vault.notices(Number.NaN).length, 6);
    vault.close();

    vault = await Vault.open(dir, dek);
    assert.deepEqual(vault.notices().map((n) => n.requestId), ['req-5', 'req-4', 'req-3', 'req-2', 'req-1', 'req-0']);
    vault.close();
    assert.throws(() => vault.addNotice(notice(9)), (err: unknown) => err instanceof VaultError && err.code === 'ERR_VAULT_CLOSED');

    const ro = await Vault.openReadOnly(dir, dek);
    try {
      assert.equal(ro.notices().length, 6);
      assert.throws(() => ro.addNotice(notice(9)), (err: unknown) => err instanceof VaultError && err.code === 'ERR_READ_ONLY');
    } finally {
      ro.close();
    }
  } finally {
    await cleanup();
  }
});

test('the index keeps only the newest NOTICE_LIMIT notices', async () => {
  const { dir, cleanup } = await tempDir();
  const vault = await Vault.open(dir, randomDataKey());
  try {
    const extra = 7;
    for (let i = 0; i < NOTICE_LIMIT + extra; i++) vault.addNotice(notice(i));
    const kept = vault.notices(NOTICE_LIMIT + 100);
    assert.equal(kept.length, NOTICE_LIMIT);
    assert.equal(kept[0]!.requestId, `req-${NOTICE_LIMIT + extra - 1}`);
    assert.equal(kept.at(-1)!.requestId, `req-${extra}`);
    assert.equal(vault.notices().length, 1000);
  } finally {
    vault.close();
    await cleanup();
  }
});

test('notices are encrypted with the index: no path, actor or request id in plaintext on disk', async () => {
  const { dir, cleanup } = await tempDir();
  const vault = await Vault.open(dir, randomDataKey());
  try {
    vault.addNotice(notice(1, { path: '/Documents/very-secret-name.txt', actor: 'mallory-the-admin', requestId: 'request-xyz-123' }));
    for (const f of await readdir(dir)) {
      if (!f.startsWith('index.db')) continue;
      const bytes = (await readFile(join(dir, f))).toString('latin1');
      for (const needle of ['very-secret-name', 'mallory-the-admin', 'request-xyz-123']) assert.ok(!bytes.includes(needle), `${needle} in ${f}`);
    }
  } finally {
    vault.close();
    await cleanup();
  }
});

test('an index of schema version 1 migrates to 2 on open, keeping its files; read-only it lists no notices', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  try {
    let vault = await Vault.open(dir, dek);
    await vault.write('/Documents/kept.txt', ['still here']);
    vault.close();
    // Turn it into what a version 1 mydoc wrote: no notice table, user_version 1.
    const db = new Database(join(dir, 'index.db'));
    db.pragma(`cipher = 'chacha20'`);
    db.pragma(`key = 'raw:${indexKeyHex(dek)}'`);
    db.exec('DROP TABLE notice');
    db.pragma('user_version = 1');
    db.close();

    const ro = await Vault.openReadOnly(dir, dek);
    try {
      assert.deepEqual(ro.notices(), []);
      assert.equal(ro.stat('/Documents/kept.txt')?.size, 10);
    } finally {
      ro.close();
    }

    vault = await Vault.open(dir, dek);
    try {
      assert.equal(vault.stat('/Documents/kept.txt')?.size, 10);
      vault.addNotice(notice(1));
      assert.deepEqual(vault.notices().map((n) => n.requestId), ['req-1']);
    } finally {
      vault.close();
    }
    const check = new Database(join(dir, 'index.db'));
    check.pragma(`cipher = 'chacha20'`);
    check.pragma(`key = 'raw:${indexKeyHex(dek)}'`);
    assert.equal(check.pragma('user_version', { simple: true }), 2);
    check.close();
  } finally {
    await cleanup();
  }
});

test('a notice line cannot be forged or disguised by what the console sends: controls and bidi characters are shown as U+FFFD', async () => {
  const { noticeLine, noticesText } = await import('../shares/vault/notice-text.js');
  const evil = notice(1, {
    actor: 'mallory\r\n2026-01-01 00:00:00 UTC\tnobody',
    via: 'data\u202e',
    path: '/Documents/a\u2028b.txt',
    requestId: 'r\t1',
    method: 'GET',
    decision: 'allow',
  });
  const line = noticeLine(evil);
  assert.equal(line.split('\t').length, 4, line);
  assert.doesNotMatch(line, /[\r\n\u2028\u202e]/);
  assert.equal(line, '2023-11-14 22:13:21 UTC\tmallory\ufffd\ufffd2026-01-01 00:00:00 UTC\ufffdnobody (share grantee, data\ufffd)\tread /Documents/a\ufffdb.txt\trequest r\ufffd1');
  assert.equal(noticesText([evil]).split('\r\n').filter(Boolean).length, 2, 'the header and one line');
});
