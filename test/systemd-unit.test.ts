/**
 * The shipped systemd unit: systemd itself accepts it, ExecStop runs
 * "mydoc stop", and TimeoutStopSec leaves room for the default shutdown
 * backup deadline plus the final steps (indexes, manifest, closing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../server/config/config.js';
import { runCommand } from './helpers/server.js';
import { tempDir } from './helpers/keys.js';
import { writeFile } from 'node:fs/promises';

const UNIT = fileURLToPath(new URL('../../deploy/systemd/mydoc.service', import.meta.url));

test('deploy/systemd/mydoc.service: valid for systemd; ExecStop and TimeoutStopSec match the shutdown deadline', async () => {
  const text = await readFile(UNIT, 'utf8');
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1];
  assert.match(value('ExecStop') ?? '', /mydoc\.js stop$/);
  assert.match(value('ExecStart') ?? '', /mydoc\.js serve$/);
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'c.yaml'), 'pcId: p\ndataDir: d\ndirectory: { kind: local }\nbackup: { target: { kind: path, path: n } }\n');
    const deadline = (await loadConfig(join(dir, 'c.yaml'))).backup.shutdownDeadlineSeconds;
    assert.ok(Number(value('TimeoutStopSec')) >= deadline + 20, `TimeoutStopSec ${value('TimeoutStopSec')} must exceed the default deadline ${deadline} s by at least 20 s`);
    await copyFile(UNIT, join(dir, 'mydoc.service'));
    const verify = await runCommand('systemd-analyze', ['verify', '--man=no', join(dir, 'mydoc.service')], { timeoutMs: 60_000 });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', `systemd-analyze complained: ${verify.stderr}`);
  } finally {
    await cleanup();
  }
});
