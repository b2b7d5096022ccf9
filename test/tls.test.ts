import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createTlsMaterial, isDnsName, TlsInputError, type TlsMaterial } from '../server/http/tls.js';

const NOW = new Date('2025-03-01T12:00:00Z');
const DAY_MS = 24 * 60 * 60 * 1000;

describe('createTlsMaterial', () => {
  let material: TlsMaterial;
  let caCert: X509Certificate;
  let serverCert: X509Certificate;

  before(async () => {
    material = await createTlsMaterial({
      hostNames: ['pc-01.corp.example'],
      ipAddresses: ['10.1.2.3'],
      commonName: 'pc-01',
      now: NOW,
    });
    caCert = new X509Certificate(material.caCertPem);
    serverCert = new X509Certificate(material.certPem);
  });

  it('signs the server certificate with the CA', () => {
    assert.ok(serverCert.verify(caCert.publicKey));
    assert.ok(serverCert.checkIssued(caCert));
    assert.ok(caCert.verify(caCert.publicKey), 'the CA is self-signed');
  });

  it('makes a CA certificate and a non-CA server certificate', () => {
    assert.equal(caCert.ca, true);
    assert.equal(serverCert.ca, false);
    assert.equal(caCert.subject, 'CN=mydoc pc-01 CA');
    assert.equal(serverCert.subject, 'CN=pc-01');
    assert.equal(serverCert.issuer, caCert.subject);
  });

  it('names localhost, 127.0.0.1 and the given names and addresses', () => {
    assert.equal(serverCert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(serverCert.checkIP('10.1.2.3'), '10.1.2.3');
    assert.equal(serverCert.checkHost('localhost'), 'localhost');
    assert.equal(serverCert.checkHost('pc-01.corp.example'), 'pc-01.corp.example');
    assert.equal(serverCert.checkHost('evil.example'), undefined);
    assert.equal(serverCert.checkIP('127.0.0.2'), undefined);
  });

  it('uses the expected key usages, key type, serials and validity', () => {
    assert.deepEqual(serverCert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(serverCert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(serverCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.match(caCert.serialNumber, /^[0-7][0-9A-F]{31}$/);
    assert.match(serverCert.serialNumber, /^[0-7][0-9A-F]{31}$/);
    const caDays = (Date.parse(caCert.validTo) - Date.parse(caCert.validFrom)) / DAY_MS;
    assert.ok(caDays >= 3652 && caDays <= 3653, `CA valid ${caDays} days`);
    assert.equal((Date.parse(serverCert.validTo) - Date.parse(serverCert.validFrom)) / DAY_MS, 825);
    assert.ok(Date.parse(serverCert.validFrom) <= NOW.getTime());
  });

  it('returns the server key as PKCS#8 PEM matching the certificate', () => {
    assert.match(material.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(material.keyPem);
    assert.ok(serverCert.checkPrivateKey(key));
  });

  it('does not return the CA private key', () => {
    assert.deepEqual(Object.keys(material).sort(), ['caCertPem', 'certPem', 'keyPem']);
    assert.ok(!material.caCertPem.includes('PRIVATE KEY'));
    assert.ok(!material.certPem.includes('PRIVATE KEY'));
  });

  it('rejects names that cannot go in the certificate', async () => {
    await assert.rejects(createTlsMaterial({ hostNames: ['bad name'], ipAddresses: [], commonName: 'x' }), TlsInputError);
    await assert.rejects(createTlsMaterial({ hostNames: [], ipAddresses: ['999.1.1.1'], commonName: 'x' }), TlsInputError);
    await assert.rejects(createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: ' ' }), TlsInputError);
  });
});

describe('isDnsName', () => {
  it('accepts host names and rejects the rest', () => {
    for (const name of ['localhost', 'pc-01', 'a.b.example', 'x1.corp']) assert.ok(isDnsName(name), name);
    for (const name of ['', '-a', 'a-', 'a..b', 'a.b.', 'a b', 'a_b', '127.0.0.1', '::1', '1.2.3', 'a'.repeat(64)]) {
      assert.ok(!isDnsName(name), name);
    }
  });
});

describe('TLS handshake with the created material', () => {
  let material: TlsMaterial;
  let server: https.Server;
  let port = 0;

  before(async () => {
    material = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'handshake-test' });
    server = https.createServer({ cert: material.certPem, key: material.keyPem }, (_request, response) => {
      response.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  function get(options: https.RequestOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve(body));
          response.on('error', reject);
        })
        .on('error', reject);
    });
  }

  it('succeeds when the client trusts the CA', async () => {
    assert.equal(await get({ ca: material.caCertPem }), 'ok');
  });

  it('succeeds for the name localhost', async () => {
    assert.equal(await get({ ca: material.caCertPem, servername: 'localhost' }), 'ok');
  });

  it('fails with a certificate error without the CA', async () => {
    await assert.rejects(get({}), (error: NodeJS.ErrnoException) => {
      assert.match(error.code ?? '', /CERT|VERIFY|SIGNATURE/);
      return true;
    });
  });

  it('fails for a name not in the certificate', async () => {
    await assert.rejects(get({ ca: material.caCertPem, servername: 'evil.example' }), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });
});
