/**
 * Take-out issuer keys. An issuer key pair is two key pairs in one PEM file
 * each (public file: two PUBLIC KEY blocks; private file: two PRIVATE KEY
 * blocks), always in this order:
 *   1. the signing key: P-256 (JWS `ES256`) or Ed25519 (JWS `EdDSA`);
 *   2. the encryption key, to which the agent encrypts K_to of a pending
 *      request (JWE `ECDH-ES` + `A256GCM`): P-256, or X25519 with Ed25519.
 * The key id (`kid`) is the RFC 7638 thumbprint of the signing public key.
 *
 * Security considerations: the issuer private key never sits on the agent;
 * the agent reads public files only. A signing key is never used for key
 * agreement (separate keys for separate jobs). Errors name the file and
 * never print key material.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { TakeoutError } from './errors.js';

export type IssuerAlg = 'ES256' | 'EdDSA';
export const ISSUER_ALGS: readonly IssuerAlg[] = ['ES256', 'EdDSA'];

export interface IssuerPublicKey {
  kid: string;
  alg: IssuerAlg;
  verifyKey: KeyObject;
  encryptKey: KeyObject;
}

export interface IssuerPrivateKey {
  kid: string;
  alg: IssuerAlg;
  signKey: KeyObject;
  decryptKey: KeyObject;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/** The kid of a signing public key (RFC 7638 thumbprint, SHA-256). */
export async function issuerKeyId(verifyKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(verifyKey));
}

/** A fresh issuer key pair as PEM texts. */
export async function generateIssuerKeyPair(alg: IssuerAlg): Promise<{ kid: string; publicPem: string; privatePem: string }> {
  const sign = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const enc = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('x25519');
  const pub = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
  const priv = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    kid: await issuerKeyId(sign.publicKey),
    publicPem: pub(sign.publicKey) + pub(enc.publicKey),
    privatePem: priv(sign.privateKey) + priv(enc.privateKey),
  };
}

function kindOf(key: KeyObject): string {
  return key.asymmetricKeyType === 'ec' ? `ec:${key.asymmetricKeyDetails?.namedCurve}` : String(key.asymmetricKeyType);
}

/** The algorithm a (signing, encryption) key pair is for, or undefined when the pair is not one this product uses. */
function algOf(sign: KeyObject, enc: KeyObject): IssuerAlg | undefined {
  const pair = `${kindOf(sign)} ${kindOf(enc)}`;
  if (pair === 'ec:prime256v1 ec:prime256v1') return 'ES256';
  if (pair === 'ed25519 x25519') return 'EdDSA';
  return undefined;
}

async function readBlocks(file: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : ((err as NodeJS.ErrnoException).code ?? 'unreadable');
    throw new TakeoutError('ERR_TAKEOUT_ISSUER_KEY', `${what}: cannot read ${file}: ${reason}`);
  }
  return pemBlocks(text, file, what);
}

function pemBlocks(text: string, file: string, what: string): string[] {
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length !== 2) {
    throw new TakeoutError('ERR_TAKEOUT_ISSUER_KEY', `${what}: ${file} must hold two PEM keys (signing key, then encryption key), as "mydoc keys issuer" writes; found ${blocks.length}`);
  }
  return blocks;
}

function parse(blocks: string[], file: string, what: string, kind: 'public' | 'private'): [KeyObject, KeyObject] {
  try {
    const make = kind === 'public' ? createPublicKey : createPrivateKey;
    return [make(blocks[0]!), make(blocks[1]!)];
  } catch {
    throw new TakeoutError('ERR_TAKEOUT_ISSUER_KEY', `${what}: ${file} does not hold two PEM ${kind} keys`);
  }
}

function requireAlg(sign: KeyObject, enc: KeyObject, file: string, what: string): IssuerAlg {
  const alg = algOf(sign, enc);
  if (!alg) throw new TakeoutError('ERR_TAKEOUT_ISSUER_KEY', `${what}: ${file} must hold a P-256 signing and a P-256 encryption key, or an Ed25519 signing and an X25519 encryption key`);
  return alg;
}

/** Reads an issuer public key file; `what` names it in errors (e.g. the config key). */
export async function loadIssuerPublicKey(file: string, what: string): Promise<IssuerPublicKey> {
  const [verifyKey, encryptKey] = parse(await readBlocks(file, what), file, what, 'public');
  const alg = requireAlg(verifyKey, encryptKey, file, what);
  return { kid: await issuerKeyId(verifyKey), alg, verifyKey, encryptKey };
}

/** An issuer public key from its PEM text (the console's key as its welcome carries it); `what` names it in errors. */
export async function parseIssuerPublicKey(text: string, what: string): Promise<IssuerPublicKey> {
  const [verifyKey, encryptKey] = parse(pemBlocks(text, 'the text', what), 'the text', what, 'public');
  const alg = requireAlg(verifyKey, encryptKey, 'the text', what);
  return { kid: await issuerKeyId(verifyKey), alg, verifyKey, encryptKey };
}

/** Reads an issuer private key file (on the administrator's machine, never on the agent). */
export async function loadIssuerPrivateKey(file: string, what: string): Promise<IssuerPrivateKey> {
  const [signKey, decryptKey] = parse(await readBlocks(file, what), file, what, 'private');
  const alg = requireAlg(signKey, decryptKey, file, what);
  return { kid: await issuerKeyId(createPublicKey(signKey)), alg, signKey, decryptKey };
}
