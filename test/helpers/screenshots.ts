/**
 * Makes the README's screenshots of the administrators' web page (docs/console-*.png):
 * the test server of console-web-server.ts with a fleet of 1,200 PCs, a real headless
 * Chromium, and four pages (the login, the PC list with its alert counts, a PC's page,
 * the pending take-out requests). Run again after a change to the pages:
 *   npx tsc -p tsconfig.json && node dist/test/helpers/screenshots.js
 */
import { fileURLToPath } from 'node:url';
import { launchBrowser } from './browser.js';
import { fleetSeed } from './console-web-seed.js';
import { startConsoleWebServer } from './console-web-server.js';

const docs = (name: string) => fileURLToPath(new URL(`../../../docs/console-${name}.png`, import.meta.url));

const server = await startConsoleWebServer((now) => fleetSeed(now, { count: 1200, hostile: false }));
const browser = await launchBrowser(server.certPem);
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${server.url}/admin/login`);
  await page.fill('#name', server.approver.name);
  await page.screenshot({ path: docs('login') });
  await page.fill('#password', server.approver.password);
  await Promise.all([page.waitForURL(/\/admin\/pcs$/), page.click('button[type=submit]')]);
  await page.goto(`${server.url}/admin/pcs?q=laptop`);
  await page.screenshot({ path: docs('pcs') });
  await page.goto(`${server.url}/admin/pcs/laptop-field-02`);
  await page.screenshot({ path: docs('pc') });
  await page.goto(`${server.url}/admin/requests`);
  await page.screenshot({ path: docs('requests') });
  process.stdout.write(`screenshots written: ${['login', 'pcs', 'pc', 'requests'].map(docs).join(', ')}\n`);
} finally {
  await browser.close();
  await server.stop();
}
