/**
 * Asymmetric key pairs of the product (the PC's device key, the
 * organisation's recovery key) and reading them from PEM files with clear
 * errors. Both are ECDH-capable P-256 keys, as JWE ECDH-ES needs.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KeyringError } from './errors.js';

export interface PemKeyPair {
  publicPem: string;
  privatePem: string;
}

export function generateP256KeyPair(): PemKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (err as Error).message;
    throw new KeyringError(`cannot read the ${what} ${file}: ${reason}`, 'ERR_KEY_FILE');
  }
}

function checkP256(key: KeyObject, file: string, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyringError(`the ${what} ${file} is not a P-256 EC key`, 'ERR_KEY_FILE');
  }
  return key;
}

async function loadKey(file: string, what: string, kind: 'public' | 'private'): Promise<KeyObject> {
  const pem = await readPem(file, what);
  let key: KeyObject;
  try {
    key = kind === 'public' ? createPublicKey(pem) : createPrivateKey(pem);
  } catch {
    throw new KeyringError(`the ${what} ${file} is not a PEM ${kind} key`, 'ERR_KEY_FILE');
  }
  return checkP256(key, file, what);
}

export function loadPublicKey(file: string, what: string): Promise<KeyObject> {
  return loadKey(file, what, 'public');
}

export function loadPrivateKey(file: string, what: string): Promise<KeyObject> {
  return loadKey(file, what, 'private');
}
