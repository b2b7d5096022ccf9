/**
 * A PC's identity on the link: its device id (hex SHA-256 of the device
 * key's SubjectPublicKeyInfo, DER) and the self-signed TLS client
 * certificate the agent presents for that key.
 *
 * Security considerations: the certificate carries no trust of its own (it
 * is self-signed and the console never checks its chain); what counts is
 * the public key in it, which the TLS handshake proves the agent holds
 * (CertificateVerify), and which the console pins by its device id. The
 * private key is used in memory only, never written by this module.
 */
import { createHash, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { x509Library } from '../../crypto/x509-library.js';

const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** Long enough to never matter: the console pins the key, not the certificate. */
const VALIDITY_DAYS = 3650;
const CLOCK_SKEW_MS = 60 * 60 * 1000;

/** Hex SHA-256 of the key's SubjectPublicKeyInfo (DER). */
export function deviceIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The device id and public key (SPKI PEM) of a peer's DER certificate. */
export function peerIdentity(certDer: Buffer): { deviceId: string; devicePublicPem: string } {
  const key = new X509Certificate(certDer).publicKey;
  return { deviceId: deviceIdOf(key), devicePublicPem: key.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A self-signed certificate (PEM) for the device key, named after the PC. */
export async function deviceCertificate(deviceKey: KeyObject, devicePublicPem: string, pcId: string, now = Date.now()): Promise<string> {
  const x509 = await x509Library();
  const privateKey = await webcrypto.subtle.importKey('pkcs8', deviceKey.export({ type: 'pkcs8', format: 'der' }), P256, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(devicePublicPem).export({ type: 'spki', format: 'der' }), P256, true, ['verify']);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) || 0x01;
  const notBefore = new Date(Math.floor((now - CLOCK_SKEW_MS) / 1000) * 1000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [`mydoc device ${pcId}`] }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + VALIDITY_DAYS * 86_400_000),
    keys: { privateKey, publicKey },
    signingAlgorithm: SIGNING,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return cert.toString('pem') + '\n';
}
