/**
 * `mydoc demo` (what `npm start` runs): on first run writes a demo
 * configuration (embedded local directory, a local folder as the NAS,
 * self-signed TLS), initialises the data folder and adds the user "demo"
 * with a random password, printed once; later runs reuse what is there.
 * Then it serves the share like `mydoc serve`.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { generateP256KeyPair } from '../../crypto/key-files.js';
import { addLocalUser } from '../../policy/directory/local/enrol.js';
import { loadConfig, type Config } from '../config/config.js';
import { renderDemoConfig } from '../config/demo-config.js';
import { localEnrolment, requireInitialised } from '../config/data-dir.js';
import { initDataDir } from './init.js';
import { serve } from '../agent/serve.js';
import { command } from './command.js';
import { version } from './version.js';

export const DEMO_USER = 'demo';

/** Sets the demo up on first run, then serves it until SIGTERM/SIGINT. */
export async function runDemo(dirArg: string, port: number | undefined, version: string, out: (t: string) => void, err: (t: string) => void): Promise<void> {
  const config = await setUpDemo(dirArg, port, out, err);
  await serve(config, version, out);
}

async function setUpDemo(dirArg: string, port: number | undefined, out: (t: string) => void, err: (t: string) => void): Promise<Config> {
  const dir = resolve(dirArg);
  const configFile = join(dir, 'mydoc.yaml');
  const exists = await access(configFile).then(
    () => true,
    () => false,
  );
  if (exists) {
    const config = await loadConfig(configFile);
    await requireInitialised(config);
    out(`demo already set up in ${dir} (configuration ${configFile}); user "${DEMO_USER}" has the password printed at the first run.\n`);
    return config;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const recovery = generateP256KeyPair();
  await writeFileAtomic(join(dir, 'recovery-private.pem'), recovery.privatePem, 0o600, 'create');
  await writeFileAtomic(join(dir, 'recovery-public.pem'), recovery.publicPem, 0o644);
  await mkdir(join(dir, 'nas'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(configFile, renderDemoConfig({ pcId: 'demo-pc', dataDir: 'data', nasDir: 'nas', recoveryPublicKey: 'recovery-public.pem', ...(port === undefined ? {} : { port }) }), 0o644, 'create');
  const config = await loadConfig(configFile);
  await initDataDir(config, {});
  const password = randomBytes(15).toString('base64url');
  await addLocalUser(await localEnrolment(config), DEMO_USER, password);
  out(`demo set up in ${dir}\n`);
  out(`  configuration: ${configFile}\n`);
  out(`  data folder:   ${config.dataDir}\n`);
  out(`  NAS stand-in:  ${join(dir, 'nas')}\n`);
  out(`  CA certificate for the guest: ${config.tls.caFile}\n`);
  out(`  user: ${DEMO_USER}   password: ${password}   (shown once; not stored)\n`);
  err(`warning: this demo keeps its network secrets in a local file (INSECURE) and its recovery private key in ${join(dir, 'recovery-private.pem')}: never use it for real data\n`);
  return config;
}

export const demoCommand = command({
  name: 'demo',
  options: {
    dir: { type: 'path', value: 'DIR', default: 'demo', description: 'the demo folder' },
    port: { type: 'number', value: 'PORT', min: 1, max: 65535, integer: true, description: 'the port to serve on, at the first run (default 8443)' },
  },
  summary:
    'First run: write a demo configuration in DIR, create keys, and add the demo user, printing its password. Then serve it, as mydoc serve does. (npm start)',
  async run({ values }, io) {
    await runDemo(values.dir, values.port, version(), io.stdout, io.stderr);
    return 0;
  },
});
