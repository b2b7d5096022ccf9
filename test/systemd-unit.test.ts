/**
 * The shipped systemd units (deploy/systemd/): ExecStop runs "mydoc stop",
 * TimeoutStopSec leaves room for the default shutdown backup deadline plus
 * the final steps (indexes, manifest, closing), and both services run as the
 * mydoc user with a 0700 state folder. systemd itself checks the installed
 * units in debian-package.test (systemd-analyze verify needs ExecStart's
 * program and the user to exist).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../server/config/config.js';
import { tempDir } from './helpers/keys.js';

const unitFile = (name: string) => fileURLToPath(new URL(`../../deploy/systemd/${name}`, import.meta.url));

async function unit(name: string): Promise<(key: string) => string | undefined> {
  const text = await readFile(unitFile(name), 'utf8');
  return (key) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1];
}

/** Both services: the mydoc user, a 0700 state folder, private files. */
function assertPrivateToMydoc(value: (key: string) => string | undefined): void {
  assert.deepEqual(['User', 'Group', 'StateDirectory', 'StateDirectoryMode', 'UMask'].map(value), ['mydoc', 'mydoc', 'mydoc', '0700', '0077']);
}

test('mydoc.service: serve and stop as the mydoc user; TimeoutStopSec exceeds the shutdown deadline', async () => {
  const value = await unit('mydoc.service');
  assert.equal(value('ExecStart'), '/usr/bin/mydoc serve');
  assert.equal(value('ExecStop'), '/usr/bin/mydoc stop');
  assertPrivateToMydoc(value);
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'c.yaml'), 'pcId: p\ndataDir: d\ndirectory: { kind: local }\nbackup: { target: { kind: path, path: n } }\n');
    const deadline = (await loadConfig(join(dir, 'c.yaml'))).backup.shutdownDeadlineSeconds;
    assert.ok(Number(value('TimeoutStopSec')) >= deadline + 20, `TimeoutStopSec ${value('TimeoutStopSec')} must exceed the default deadline ${deadline} s by at least 20 s`);
  } finally {
    await cleanup();
  }
});

test('mydoc-console.service: console serve as the mydoc user, with its own configuration', async () => {
  const value = await unit('mydoc-console.service');
  assert.equal(value('ExecStart'), '/usr/bin/mydoc console serve');
  assert.equal(value('Environment'), 'MYDOC_CONSOLE_CONFIG=/etc/mydoc/console.yaml');
  assertPrivateToMydoc(value);
});
