/**
 * Test helper: a real headless Chromium (Debian's `chromium`, /usr/bin/chromium)
 * driven by playwright-core, with a fresh profile in a temporary folder. Nothing is
 * downloaded: playwright-core never fetches a browser, and the flags turn off
 * Chromium's own background traffic (updates, sync, QUIC, first-run fetches).
 *
 * TLS is checked for real, not switched off: the browser accepts exactly the
 * server certificates whose SubjectPublicKeyInfo hashes are given
 * (--ignore-certificate-errors-spki-list, which Chromium honours only with its own
 * --user-data-dir), so a test talks HTTPS to its own server and nothing else.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (what the SPKI list names). */
export function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export interface RunningBrowser {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Starts Chromium trusting only `serverCertPem` (or each of several servers' certificates); fails clearly when Debian's chromium is not installed. */
export async function launchBrowser(serverCertPem: string | string[]): Promise<RunningBrowser> {
  const trusted = (Array.isArray(serverCertPem) ? serverCertPem : [serverCertPem]).map(spkiHash).join(',');
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: install the Debian package chromium (npm test does)`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'mydoc-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...FLAGS, `--ignore-certificate-errors-spki-list=${trusted}`],
      acceptDownloads: true,
      viewport: { width: 1360, height: 860 },
      timeout: 60_000,
    });
    return {
      context,
      close: async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}
