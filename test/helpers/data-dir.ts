/** Test helpers over a whole data folder: enrolled users, file snapshots, byte scans. */
import { createHash, createPublicKey, createPrivateKey, type KeyObject } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { generateP256KeyPair } from '../../crypto/key-files.js';
import { InsecureLocalFileSecretSource } from '../../crypto/network-secret.js';
import { enrolUser, openUserVault, type UnlockedVault } from '../../shares/vault/user-vaults.js';

export interface EnrolledUser {
  dataDir: string;
  pcId: string;
  user: string;
  secretFile: string;
  recoveryPrivateKey: KeyObject;
  open: () => Promise<UnlockedVault>;
}

export async function enrolTestUser(dataDir: string, user = 'alice', pcId = 'pc-test'): Promise<EnrolledUser> {
  const pair = generateP256KeyPair();
  const secretFile = join(dataDir, 'local-directory', 'INSECURE-network-secrets.json');
  const source = new InsecureLocalFileSecretSource(secretFile);
  await enrolUser({ dataDir, pcId, user, source, recoveryPublicKey: createPublicKey(pair.publicPem) });
  return {
    dataDir,
    pcId,
    user,
    secretFile,
    recoveryPrivateKey: createPrivateKey(pair.privatePem),
    open: () => openUserVault(dataDir, pcId, user, source),
  };
}

/** Every file and symbolic link under `dir` (a vault lock is a link), sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out.sort();
}

/** What a file holds; for a symbolic link, its target (never followed); nothing for a socket or fifo (the admin socket). */
export async function fileBytes(file: string): Promise<Buffer> {
  const s = await lstat(file);
  if (s.isSymbolicLink()) return Buffer.from(await readlink(file));
  return s.isFile() ? readFile(file) : Buffer.alloc(0);
}

/** path -> sha256, size, mtime of every file under `dir`. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const f of await listFiles(dir)) {
    const s = await lstat(f);
    map.set(f, `${createHash('sha256').update(await fileBytes(f)).digest('hex')} ${s.size} ${s.mtimeMs}`);
  }
  return map;
}

/** Files under `dir` containing `marker` as UTF-8 or UTF-16LE (with the hit encodings). */
export async function scanForMarker(dir: string, marker: string): Promise<string[]> {
  const needles = [Buffer.from(marker, 'utf8'), Buffer.from(marker, 'utf16le')];
  const hits: string[] = [];
  for (const f of await listFiles(dir)) {
    const bytes = await fileBytes(f);
    if (needles.some((n) => bytes.includes(n))) hits.push(f);
  }
  return hits;
}
