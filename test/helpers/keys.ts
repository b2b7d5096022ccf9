/** Test helpers for keys and temporary folders. */
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataKey } from '../../crypto/object-format.js';

export function randomDataKey(): DataKey {
  return { id: randomBytes(16), key: createSecretKey(randomBytes(32)) };
}

export function dataKeyFromHex(idHex: string, keyHex: string): DataKey {
  return { id: Buffer.from(idHex, 'hex'), key: createSecretKey(Buffer.from(keyHex, 'hex')) };
}

/** A fresh temporary folder, removed by the returned cleanup function. */
export async function tempDir(prefix = 'mydoc-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Deterministic test bytes: byte i is (i * 7 + seed) mod 251. */
export function patternBytes(length: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed) % 251;
  return b;
}
