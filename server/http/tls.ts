/**
 * Creation of the TLS material the WebDAV server presents to the guest: a private CA and a
 * server certificate signed by it. Writing the PEM files is the caller's job.
 *
 * The CA private key is generated non-extractable, used to sign the one server certificate,
 * and then dropped: it is never returned and never written anywhere. A stolen disk therefore
 * holds no key that can mint further certificates the guest trusts; renewing the server
 * certificate means creating a new CA and installing it in the guest again.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { x509Library } from '../../crypto/x509-library.js';

/** Input to TLS certificate creation is unusable (e.g. a host name that is not a DNS name). */
export class TlsInputError extends Error {
  readonly code = 'ERR_TLS_INPUT';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface TlsMaterial {
  /** PEM of the self-signed CA certificate (to install in the guest's trust store). */
  caCertPem: string;
  /** PEM of the server certificate, signed by the CA. */
  certPem: string;
  /** PKCS#8 PEM of the server private key. */
  keyPem: string;
}

export interface TlsMaterialOptions {
  /** DNS names for the certificate; `localhost` is always added. */
  hostNames: string[];
  /** IP addresses for the certificate; `127.0.0.1` is always added. */
  ipAddresses: string[];
  /** Server certificate subject CN; the CA is named `mydoc <commonName> CA`. */
  commonName: string;
  /** Creation time (tests); default now. */
  now?: Date;
}

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const CA_VALIDITY_YEARS = 10;
/** 825 days: the longest validity Apple platforms accept for a TLS server certificate. */
const SERVER_VALIDITY_DAYS = 825;
/** notBefore is set this far in the past so a guest whose clock lags still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_DNS_NAME_LENGTH = 253;
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** True if `name` is a syntactically valid DNS host name (LDH labels, no trailing dot, not an IP). */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_DNS_NAME_LENGTH || isIP(name) !== 0) return false;
  const labels = name.split('.');
  const lastLabel = labels[labels.length - 1] ?? '';
  return labels.every((label) => DNS_LABEL.test(label)) && !/^[0-9]+$/.test(lastLabel);
}

export async function createTlsMaterial(opts: TlsMaterialOptions): Promise<TlsMaterial> {
  const x509 = await x509Library();
  const hostNames = unique(['localhost', ...opts.hostNames]);
  const ipAddresses = unique(['127.0.0.1', ...opts.ipAddresses]);
  checkNames(hostNames, ipAddresses, opts.commonName);

  const notBefore = new Date(truncateToSeconds(opts.now ?? new Date()).getTime() - CLOCK_SKEW_MS);
  const caNotAfter = new Date(notBefore);
  caNotAfter.setUTCFullYear(caNotAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const serverNotAfter = new Date(notBefore.getTime() + SERVER_VALIDITY_DAYS * DAY_MS);

  // Non-extractable: the CA private key can sign, but can never be exported or saved.
  const caKeys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, false, ['sign', 'verify']);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [`mydoc ${opts.commonName} CA`] }],
    notBefore,
    notAfter: caNotAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const serverCert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: [{ CN: [opts.commonName] }],
    issuer: caCert.subjectName,
    notBefore,
    notAfter: serverNotAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...hostNames.map((value) => ({ type: 'dns' as const, value })),
        ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
    ],
  });

  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  return {
    caCertPem: withFinalNewline(caCert.toString('pem')),
    certPem: withFinalNewline(serverCert.toString('pem')),
    keyPem: withFinalNewline(x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')),
  };
}

function checkNames(hostNames: string[], ipAddresses: string[], commonName: string): void {
  if (commonName.trim() === '') throw new TlsInputError('tls: the common name must not be empty');
  const badHost = hostNames.find((name) => !isDnsName(name));
  if (badHost !== undefined) throw new TlsInputError(`tls: ${JSON.stringify(badHost)} is not a DNS host name`);
  const badIp = ipAddresses.find((address) => isIP(address) === 0);
  if (badIp !== undefined) throw new TlsInputError(`tls: ${JSON.stringify(badIp)} is not an IP address`);
}

/** 16 random bytes as hex, first byte in 0x01..0x7f: a positive INTEGER that DER-encodes in exactly 16 bytes. */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) || 0x01;
  return bytes.toString('hex');
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function truncateToSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function withFinalNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
