/**
 * `mydoc demo` (what `npm start` runs): on first run writes a demo
 * configuration for a console and for an agent beside it (embedded local
 * directories, a local folder as the NAS, self-signed TLS), initialises
 * both data folders, registers the agent's PC on the console (its token
 * goes into the agent's `console:` section, so it enrols at its first link;
 * the console's issuer key is in its `takeout.issuerPublicKeys`), and adds
 * the user "demo" and the console administrator "admin" (every role) with
 * random passwords, printed once; later runs reuse what is there. Then it
 * serves the console and the share, like `mydoc console serve` and
 * `mydoc serve`.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { generateP256KeyPair } from '../../crypto/key-files.js';
import { addLocalUser } from '../../policy/directory/local/enrol.js';
import { LocalUsersFile } from '../../policy/directory/local/users-file.js';
import { loadConfig, type Config } from '../config/config.js';
import { renderDemoConfig } from '../config/demo-config.js';
import { localEnrolment, requireInitialised } from '../config/data-dir.js';
import { loadConsoleConfig, type ConsoleConfig } from '../console/config.js';
import { consoleFolder } from '../console/data-folder.js';
import { renderConsoleDemoConfig } from '../console/demo-config.js';
import { initConsole, requireConsoleInitialised } from '../console/init.js';
import { addPc } from '../console/pcs.js';
import { initDataDir } from './init.js';
import { serve } from '../agent/serve.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { commandLogger, withStore } from './console.js';
import { logLevelOption, serviceLog } from './service-log.js';
import type { LogOptions } from '../http/log-options.js';
import { version } from './version.js';

export const DEMO_USER = 'demo';
export const DEMO_ADMIN = 'admin';
const DEMO_PC = 'demo-pc';
const ADMINS_GROUP = 'mydoc-admins';
const DEFAULT_CONSOLE_PORT = 9443;

interface Demo {
  agent: Config;
  console: ConsoleConfig;
}

/** Sets the demo up on first run, then serves the console and the agent until SIGTERM/SIGINT. */
export async function runDemo(dirArg: string, ports: { port?: number | undefined; consolePort?: number | undefined }, version: string, out: (t: string) => void, err: (t: string) => void, log: LogOptions = {}): Promise<void> {
  const demo = await setUpDemo(dirArg, ports, out, err);
  const { startConsole } = await import('../console/serve.js');
  const running = await startConsole(demo.console, version, log);
  out(`mydoc demo: the console's page ${running.url} (log in as "${DEMO_ADMIN}"; CA ${consoleFolder(demo.console.dataDir).tls.caFile})\n`);
  out(`mydoc demo: every PC's data, read-only, as one WebDAV tree: ${running.url.replace(/\/$/, '')}/pcs/ (as "${DEMO_ADMIN}"); folders shared with a user: ${running.url.replace(/\/$/, '')}/shared/\n`);
  try {
    await serve(demo.agent, version, out, log);
  } finally {
    await running.stop();
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

const newPassword = (): string => randomBytes(15).toString('base64url');

async function setUpDemo(dirArg: string, ports: { port?: number | undefined; consolePort?: number | undefined }, out: (t: string) => void, err: (t: string) => void): Promise<Demo> {
  const dir = resolve(dirArg);
  const configFile = join(dir, 'mydoc.yaml');
  const consoleFile = join(dir, 'console.yaml');
  if (await exists(configFile)) {
    if (!(await exists(consoleFile))) throw new CliError(`${dir} holds a demo of an earlier version, without a console: remove that folder and run the demo again`);
    const demo = { agent: await loadConfig(configFile), console: await loadConsoleConfig(consoleFile) };
    await requireInitialised(demo.agent);
    await requireConsoleInitialised(demo.console);
    out(`demo already set up in ${dir} (configurations ${configFile} and ${consoleFile}); "${DEMO_USER}" and "${DEMO_ADMIN}" have the passwords printed at the first run.\n`);
    return demo;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });

  // The console first: the agent's configuration names its CA, issuer key and the PC's token.
  await writeFileAtomic(consoleFile, renderConsoleDemoConfig({ dataDir: 'console', port: ports.consolePort ?? DEFAULT_CONSOLE_PORT, adminsGroup: ADMINS_GROUP, nasDir: 'nas' }), 0o644, 'create');
  const consoleConfig = await loadConsoleConfig(consoleFile);
  await initConsole(consoleConfig, commandLogger());
  const admins = new LocalUsersFile(consoleConfig.directory.local.usersFile);
  const adminPassword = newPassword();
  await admins.add(DEMO_ADMIN, adminPassword);
  await admins.setGroup(ADMINS_GROUP, { users: [DEMO_ADMIN] });
  const added = await withStore(consoleConfig, (admin) => addPc(admin, DEMO_PC, 'demo'));
  const consolePaths = consoleFolder(consoleConfig.dataDir);

  const recovery = generateP256KeyPair();
  await writeFileAtomic(join(dir, 'recovery-private.pem'), recovery.privatePem, 0o600, 'create');
  await writeFileAtomic(join(dir, 'recovery-public.pem'), recovery.publicPem, 0o644);
  await mkdir(join(dir, 'nas'), { recursive: true, mode: 0o700 });
  const agentText = renderDemoConfig({
    pcId: DEMO_PC,
    dataDir: 'data',
    nasDir: 'nas',
    recoveryPublicKey: 'recovery-public.pem',
    ...(ports.port === undefined ? {} : { port: ports.port }),
    issuerPublicKeys: [consolePaths.issuerPublicKey],
    console: { url: `https://127.0.0.1:${consoleConfig.listen.linkPort}`, caFile: consolePaths.tls.caFile, enrolmentToken: added.token },
  });
  // 0600: it holds the enrolment token until the PC has enrolled.
  await writeFileAtomic(configFile, agentText, 0o600, 'create');
  const config = await loadConfig(configFile);
  await initDataDir(config, {});
  const password = newPassword();
  await addLocalUser(await localEnrolment(config), DEMO_USER, password);
  out(`demo set up in ${dir}\n`);
  out(`  agent configuration:   ${configFile} (data folder ${config.dataDir}, NAS stand-in ${join(dir, 'nas')})\n`);
  out(`  console configuration: ${consoleFile} (data folder ${consoleConfig.dataDir}); PC "${DEMO_PC}" is registered and enrols at its first link\n`);
  out(`  CA certificates: the share's ${config.tls.caFile}, the console's ${consolePaths.tls.caFile}\n`);
  out(`  user:                  ${DEMO_USER}   password: ${password}   (shown once; not stored)\n`);
  out(`  console administrator: ${DEMO_ADMIN}   password: ${adminPassword}   (every role; shown once; not stored)\n`);
  err(`warning: this demo keeps its network secrets in a local file (INSECURE) and its recovery private key in ${join(dir, 'recovery-private.pem')}: never use it for real data\n`);
  return { agent: config, console: consoleConfig };
}

export const demoCommand = command({
  name: 'demo',
  options: {
    dir: { type: 'path', value: 'DIR', default: 'demo', description: 'the demo folder' },
    port: { type: 'number', value: 'PORT', min: 1, max: 65535, integer: true, description: 'the port to serve the share on, at the first run (default 8443)' },
    'console-port': { type: 'number', value: 'PORT', min: 1, max: 65534, integer: true, description: `the console's port, at the first run; its link port is the next one (default ${DEFAULT_CONSOLE_PORT})` },
    'log-level': logLevelOption,
  },
  summary:
    "First run: write demo configurations in DIR for a console and an agent enrolled on it, create keys, and add the demo user and the console's administrator, printing their passwords. Then serve both, as mydoc console serve and mydoc serve do. (npm start)",
  async run({ values }, io) {
    await runDemo(values.dir, { port: values.port, consolePort: values['console-port'] }, version(), io.stdout, io.stderr, await serviceLog(values['log-level'], io));
    return 0;
  },
});
