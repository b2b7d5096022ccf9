/**
 * The `mydoc` command line. Every command exits 0 on success and non-zero
 * with one line on standard error on failure (2 for usage errors).
 */
import { createRequire } from 'node:module';
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { verifyAuditLog } from '../../policy/audit/log.js';
import { dataFolder } from '../../shares/data-folder.js';
import { addLocalUser } from '../../policy/directory/local/enrol.js';
import { loadConfig, type Config } from '../config/config.js';
import { localEnrolment, recoveryPublicKeyFile, requireInitialised } from '../config/data-dir.js';
import { runDemo } from './demo.js';
import { CliError } from './errors.js';
import { initDataDir } from './init.js';
import { serve } from '../agent/serve.js';
import { buildDirectory } from '../config/directory.js';
import { loadPublicKey } from '../../crypto/key-files.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import { enrolUser } from '../../shares/vault/user-vaults.js';
import { adminCall, recordAuditEvent, type LockInfo } from '../agent/admin-socket.js';
import { agentConnection, approve, revoke, writeIssuerKeys } from './takeout.js';
import { type TargetChoice, backupCommand, stopCommand, backupList, backupPrune, backupVerify, recoverCommand, restoreCommand } from './backup.js';

const DEFAULT_CONFIG = '/etc/mydoc/config.yaml';
/** The levels of the service log (pino's); `MYDOC_LOG_LEVEL` picks one for `mydoc serve` (default info). */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const HELP = `mydoc — My Doc Manager: encrypted documents for the company laptop

Usage:
  mydoc init --config FILE [--recovery-key-out FILE]
      Create the data folder: device key pair, CA and TLS certificate, and,
      when recovery.publicKey is not configured, a recovery key pair whose
      private half is written to --recovery-key-out (it must leave the PC).
  mydoc user enroll NAME [--config FILE]
      With a company directory (directory.kind: ldap): create the user's
      network secret in the directory and their vault on this PC (otherwise
      done at their first online login).
  mydoc user add NAME --password-stdin [--admin] [--config FILE]
      Add a user to the embedded local directory (directory.kind: local) and
      create their encrypted vault. The password is read from standard input.
      --admin makes the user a mydoc administrator (take-out approvals).
  mydoc serve [--config FILE]
      Serve the users' documents to the Windows guest: WebDAV over HTTPS at
      the root of https://listen.host:listen.port/, Basic authentication.
      Runs until SIGTERM or SIGINT. $MYDOC_LOG_LEVEL sets the log level
      (fatal, error, warn, info (default), debug, trace, silent).
  mydoc locks list [--user NAME] [--config FILE]
  mydoc locks clear (--token TOKEN | --all) [--user NAME] [--config FILE]
      List or clear the WebDAV locks held in the running service (e.g. a
      stale lock left by a crashed Office), through its local admin socket.
  mydoc keys issuer --out FILE --public-out FILE [--alg ES256|EdDSA]
      Generate a take-out issuer key pair (default ES256). The private file
      approves take-out periods: keep it off the PCs. List the public file in
      each agent's takeout.issuerPublicKeys.
  mydoc takeout approve --agent URL --id ID --days N --issuer-key FILE
                        --user ADMIN --password-stdin [--ca FILE]
      On the administrator's machine: fetch the pending take-out request ID
      from the agent, sign a take-out key for N days (at most the agent's
      takeout.maxDays) with the issuer private key, and install it there.
  mydoc takeout revoke --agent URL --jti JTI --user ADMIN --password-stdin [--ca FILE]
      Revoke a take-out key: refused at once; its slot T is destroyed at the
      agent's next online check. --ca is the agent's CA certificate.
  mydoc backup [--shutdown] [--deadline SECONDS] [--config FILE]
      Copy this PC's encrypted data to the backup target (backup.target):
      only objects the target lacks, then the encrypted indexes, keyrings
      (slots N and R) and, last, the snapshot's manifest. Runs through the
      service when it is running. --shutdown stops copying after
      backup.shutdownDeadlineSeconds (or --deadline). A progress bar on a
      terminal, a JSON summary otherwise. Exit 0 complete, 3 partial (the
      deadline came first; the next run resumes), 1 failed.
  mydoc stop [--config FILE]
      Stop the running service the way a shutdown should (systemd ExecStop):
      it backs up with backup.shutdownDeadlineSeconds, reports here, then
      exits. Exit status as for mydoc backup; 0 when no service runs.
  mydoc backup list [--config FILE | --from TARGET [--auth-file FILE] [--pc PCID]]
      The complete snapshots of this PC on its target; with --from, of any
      PC (default: every PC) on TARGET, from any machine.
  mydoc backup verify [--read-data PERCENT] [--repair]
                      [--config FILE | --from TARGET [--auth-file FILE] [--pc PCID]
                       [--device-key FILE|THUMBPRINT] [--trust-file F]]
      Check every snapshot's manifest is signed by the PC's device key and
      its files exist with their sizes; re-hash PERCENT of them (random).
      Each damaged file is reported by path, and a rollback (the newest
      snapshot older than one seen before); exit 1 then.
      --repair removes damaged objects so the next backup copies them again.
  mydoc backup prune --keep N [--config FILE]
      Remove all but the newest N snapshots and the objects only they used.
  mydoc restore --from TARGET [--auth-file FILE] --recovery-key FILE
                [--pc PCID] [--snapshot ID|latest] [--device-key FILE|THUMBPRINT]
                [--config FILE]
      On a new PC (after mydoc init): restore a snapshot of PC PCID (default:
      this pcId) from TARGET (a folder, or //host[:port]/share[/folder] with
      a 0600 Samba auth file). The recovery private key opens the keyrings;
      the keys are wrapped into this PC's slots, so users log in as before.
      The local directory's users come back too. Only manifests signed by
      the old PC's device key are accepted: --device-key pins it (its
      device-public.pem, or the thumbprint mydoc init printed); without it,
      the key on the target is trusted at first use and must not change.
  mydoc recover --recovery-key FILE --from TARGET [--auth-file FILE] --pc PCID
                [--snapshot ID|latest] [--device-key FILE|THUMBPRINT] [--trust-file F]
                (--list | --extract PATH --to DIR | --audit-log FILE)
      For administrators, on any machine: list what a PC's backup holds,
      extract PATH (/USER/Documents/...) as plain files into DIR, or write
      the PC's audit log to FILE. Needs no directory and no agent. Device
      keys trusted and the newest snapshot seen of each PC are recorded in
      the trust file (default ~/.local/state/mydoc/backup-trust.json).
  mydoc audit verify [--file FILE] [--config FILE]
      Check the audit log's hash chain (default <dataDir>/audit/audit.log):
      an edited, removed, duplicated or reordered line is reported by number.
  mydoc demo [--dir DIR] [--port PORT]
      First run: write a demo configuration in DIR (default ./demo; port
      default 8443), create keys, and add the demo user, printing its
      password. Then serve it, as mydoc serve does. (npm start)
  mydoc --help | --version

Options:
  --config FILE   configuration file (default: $MYDOC_CONFIG, else ${DEFAULT_CONFIG})

Exit status: 0 success, 1 failure, 2 usage error (mydoc backup: 3 partial).
`;

export function version(): string {
  const require = createRequire(import.meta.url);
  return (require('../../../package.json') as { version: string }).version;
}

type Out = (text: string) => void;

interface Io {
  stdout: Out;
  stderr: Out;
  stdin: () => Promise<Buffer>;
  stdinIsTty: boolean;
  /** A progress bar is drawn on standard error when it is a terminal. */
  stderrIsTty?: boolean;
  env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  },
  stdinIsTty: Boolean(process.stdin.isTTY),
  stderrIsTty: Boolean(process.stderr.isTTY),
  env: process.env,
};

function parse(args: string[], options: ParseArgsConfig['options'], positionals: number): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean' } }, allowPositionals: positionals > 0, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  if (parsed.positionals.length > positionals) throw new CliError(`unexpected argument "${parsed.positionals[positionals]}"`, 2);
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

/**
 * `--name VALUE` as `--name=VALUE` for the options in `names`, so a value
 * starting with "-" is the option's value: parseArgs refuses `--id -x` as
 * ambiguous, and the request ids the service issues (base64url) may start
 * with "-".
 */
function valuesMayStartWithDash(args: string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return [...out, ...args.slice(i)];
    if (names.includes(arg) && i + 1 < args.length) out.push(`${arg}=${args[++i]}`);
    else out.push(arg);
  }
  return out;
}

async function configFrom(value: unknown, io: Io): Promise<Config> {
  const file = typeof value === 'string' ? value : (io.env.MYDOC_CONFIG ?? DEFAULT_CONFIG);
  return loadConfig(file);
}

async function cmdInit(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' }, 'recovery-key-out': { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  const config = await configFrom(values.config, io);
  const report = await initDataDir(config, { recoveryKeyOut: values['recovery-key-out'] as string | undefined });
  io.stdout(`initialised ${report.dataDir} for PC "${config.pcId}"\n`);
  io.stdout(`  CA certificate (install in the Windows guest's LocalMachine\\Root): ${report.caFile}\n`);
  io.stdout(`  TLS server certificate: ${report.certFile}\n`);
  io.stdout(`  recovery public key: ${report.recoveryPublicKey}\n`);
  io.stdout(`  device key thumbprint: ${report.deviceKeyThumbprint} (record it with the recovery key: "mydoc restore" and "mydoc recover --device-key ${report.deviceKeyThumbprint}" accept only backups this PC signed)\n`);
  if (report.recoveryKeyOut) {
    io.stderr(
      [
        '',
        '!!! ====================================================================== !!!',
        `!!! RECOVERY PRIVATE KEY WRITTEN TO ${report.recoveryKeyOut}`,
        '!!! It opens every vault of this PC. Move it OFF this PC now, into the',
        '!!! organisation\'s safe keeping, and delete it here. Whoever holds it and a',
        '!!! copy of the data can read everything. Without it, a lost PC cannot be recovered.',
        '!!! ====================================================================== !!!',
        '',
      ].join('\n') + '\n',
    );
  }
  return 0;
}

async function readPassword(io: Io): Promise<string> {
  if (io.stdinIsTty) throw new CliError('--password-stdin reads the password from standard input: pipe it in, e.g. printf %s "$PW" | mydoc user add NAME --password-stdin', 2);
  return (await io.stdin()).toString('utf8').replace(/\r?\n$/, '');
}

async function cmdUser(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === undefined) return io.stdout(HELP), sub === undefined ? 2 : 0;
  if (sub === 'enroll') return cmdUserEnroll(rest, io);
  if (sub !== 'add') throw new CliError(`unknown command "user ${sub}" (see mydoc --help)`, 2);
  const { values, positionals } = parse(rest, { config: { type: 'string' }, 'password-stdin': { type: 'boolean' }, admin: { type: 'boolean' } }, 1);
  if (values.help) return io.stdout(HELP), 0;
  const name = positionals[0];
  if (!name) throw new CliError('usage: mydoc user add NAME --password-stdin [--admin] [--config FILE]', 2);
  if (!values['password-stdin']) throw new CliError('the password must come from standard input: add --password-stdin (passwords are never taken as arguments)', 2);
  const config = await configFrom(values.config, io);
  if (config.directory.kind !== 'local') throw new CliError(`"mydoc user add" is for the local directory; directory.kind is "${config.directory.kind}"`);
  await requireInitialised(config);
  const password = await readPassword(io);
  const event = { actor: localActor(), action: 'user.enrol', target: name } as const;
  try {
    await addLocalUser(await localEnrolment(config), name, password, { admin: values.admin === true });
  } catch (err) {
    await recordAuditEvent(config.dataDir, { ...event, decision: 'deny', reason: `mydoc user add: ${(err as Error).message}` });
    throw err;
  }
  await recordAuditEvent(config.dataDir, { ...event, decision: 'allow', reason: `mydoc user add${values.admin ? ' --admin' : ''} (local directory)` });
  io.stdout(`added ${values.admin ? 'administrator' : 'user'} "${name}" and created their vault (Documents, Desktop, Profile)\n`);
  io.stderr(`warning: the local directory keeps network secrets in ${config.directory.local.insecureSecretFile}: INSECURE, for demos and tests only\n`);
  return 0;
}

async function cmdServe(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  const logLevel = io.env.MYDOC_LOG_LEVEL || undefined;
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) throw new CliError(`MYDOC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`, 2);
  await serve(await configFrom(values.config, io), version(), io.stdout, logLevel === undefined ? {} : { logLevel });
  return 0;
}

async function cmdLocks(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'list' && sub !== 'clear') throw new CliError('usage: mydoc locks list|clear ... (see mydoc --help)', 2);
  const { values } = parse(rest, { config: { type: 'string' }, user: { type: 'string' }, token: { type: 'string' }, all: { type: 'boolean' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  const config = await configFrom(values.config, io);
  const query = new URLSearchParams();
  if (typeof values.user === 'string') query.set('user', values.user);
  if (sub === 'list') {
    const { locks } = await adminCall<{ locks: LockInfo[] }>(config.dataDir, 'GET', `/locks?${query}`);
    if (locks.length === 0) io.stdout('no locks\n');
    for (const l of locks) io.stdout(`${l.token}  ${l.user}  ${l.scope}  depth ${l.depth}  expires in ${l.expiresInSeconds} s  ${l.root}${l.owner ? `  owner ${l.owner}` : ''}\n`);
    return 0;
  }
  if (typeof values.token === 'string') query.set('token', values.token);
  else if (!values.all) throw new CliError('mydoc locks clear needs --token TOKEN or --all', 2);
  const { cleared } = await adminCall<{ cleared: number }>(config.dataDir, 'DELETE', `/locks?${query}`);
  io.stdout(`cleared ${cleared} lock(s)\n`);
  return 0;
}

async function cmdAudit(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') throw new CliError('usage: mydoc audit verify [--file FILE] [--config FILE]', 2);
  const { values } = parse(rest, { config: { type: 'string' }, file: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  const file = typeof values.file === 'string' ? values.file : dataFolder((await configFrom(values.config, io)).dataDir).auditLog;
  const result = await verifyAuditLog(file);
  if (!result.ok) throw new CliError(result.line === 0 ? `audit log ${file}: ${result.problem}` : `audit log damaged at line ${result.line}: ${result.problem}`);
  io.stdout(`audit log OK: ${result.lines} lines, head ${result.head.seq}:${result.head.hash.slice(0, 16)}\n`);
  return 0;
}

async function cmdKeys(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'issuer') throw new CliError('usage: mydoc keys issuer --out FILE --public-out FILE [--alg ES256|EdDSA]', 2);
  const { values } = parse(rest, { out: { type: 'string' }, 'public-out': { type: 'string' }, alg: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  if (typeof values.out !== 'string' || typeof values['public-out'] !== 'string') throw new CliError('mydoc keys issuer needs --out FILE and --public-out FILE', 2);
  io.stdout(await writeIssuerKeys({ out: values.out, publicOut: values['public-out'], alg: (values.alg as string | undefined) ?? 'ES256' }));
  return 0;
}

async function cmdTakeout(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'approve' && sub !== 'revoke') throw new CliError('usage: mydoc takeout approve|revoke ... (see mydoc --help)', 2);
  const connection = { agent: { type: 'string' }, ca: { type: 'string' }, user: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;
  const { values } = parse(valuesMayStartWithDash(rest, ['--id', '--jti']), { ...connection, id: { type: 'string' }, days: { type: 'string' }, 'issuer-key': { type: 'string' }, jti: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  if (sub === 'revoke') {
    if (typeof values.jti !== 'string') throw new CliError('mydoc takeout revoke needs --jti JTI', 2);
    io.stdout(await revoke(await agentConnection(values, () => readPassword(io)), values.jti));
    return 0;
  }
  const days = Number(values.days);
  if (typeof values.id !== 'string' || typeof values['issuer-key'] !== 'string' || values.days === undefined) {
    throw new CliError('mydoc takeout approve needs --id ID, --days N and --issuer-key FILE', 2);
  }
  if (!Number.isInteger(days) || days < 1) throw new CliError(`--days must be a whole number of days (got "${values.days}")`, 2);
  io.stdout(await approve(await agentConnection(values, () => readPassword(io)), { id: values.id, days, issuerKeyFile: values['issuer-key'] }));
  return 0;
}

async function cmdBackup(args: string[], io: Io): Promise<number> {
  const sub = args[0] !== undefined && !args[0].startsWith('-') ? args[0] : undefined;
  const rest = sub === undefined ? args : args.slice(1);
  const { values } = parse(
    rest,
    {
      config: { type: 'string' },
      shutdown: { type: 'boolean' },
      deadline: { type: 'string' },
      'read-data': { type: 'string' },
      repair: { type: 'boolean' },
      keep: { type: 'string' },
      from: { type: 'string' },
      'auth-file': { type: 'string' },
      pc: { type: 'string' },
      'device-key': { type: 'string' },
      'trust-file': { type: 'string' },
    },
    0,
  );
  if (values.help) return io.stdout(HELP), 0;
  // list and verify also read any target from any machine (--from), without a configuration.
  const fromArgs = typeof values.from === 'string';
  if (fromArgs && sub !== 'list' && sub !== 'verify') throw new CliError(`--from is for "backup list" and "backup verify"; ${sub === undefined ? 'a backup' : `"backup ${sub}"`} uses backup.target of the configuration`, 2);
  if (!fromArgs && (values.pc !== undefined || values['auth-file'] !== undefined || values['device-key'] !== undefined || values['trust-file'] !== undefined)) {
    throw new CliError('--pc, --auth-file, --device-key and --trust-file go with --from TARGET', 2);
  }
  const choice = async (): Promise<TargetChoice> =>
    fromArgs
      ? { from: values.from as string, authFile: values['auth-file'] as string | undefined, pc: values.pc as string | undefined, deviceKey: values['device-key'] as string | undefined, trustFile: values['trust-file'] as string | undefined }
      : { config: await configFrom(values.config, io) };
  const config = async () => configFrom(values.config, io);
  const number = (name: string, min: number, max: number): number | undefined => {
    const text = values[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new CliError(`--${name} must be a number from ${min} to ${max} (got "${String(text)}")`, 2);
    return n;
  };
  switch (sub) {
    case undefined: {
      const explicit = number('deadline', 0.01, 86400);
      const c = await config();
      return backupCommand(c, { deadlineSeconds: explicit ?? (values.shutdown ? c.backup.shutdownDeadlineSeconds : undefined), stdout: io.stdout, stderr: io.stderr, terminal: io.stderrIsTty === true });
    }
    case 'list':
      return backupList(await choice(), io.stdout, io.stderr);
    case 'verify':
      return backupVerify(await choice(), number('read-data', 0, 100) ?? 0, values.repair === true, io.stdout, io.stderr);
    case 'prune': {
      const keep = number('keep', 1, 100000);
      if (keep === undefined || !Number.isInteger(keep)) throw new CliError('mydoc backup prune needs --keep N (a whole number of snapshots to keep, at least 1)', 2);
      return backupPrune(await config(), keep, io.stdout);
    }
    default:
      throw new CliError(`unknown command "backup ${sub}" (see mydoc --help)`, 2);
  }
}

async function cmdStop(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  return stopCommand(await configFrom(values.config, io), { stdout: io.stdout, stderr: io.stderr, terminal: io.stderrIsTty === true });
}

const TARGET_OPTIONS = { from: { type: 'string' }, 'auth-file': { type: 'string' }, 'recovery-key': { type: 'string' }, pc: { type: 'string' }, snapshot: { type: 'string' }, 'device-key': { type: 'string' } } as const;

async function cmdRestore(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' }, ...TARGET_OPTIONS }, 0);
  if (values.help) return io.stdout(HELP), 0;
  if (typeof values.from !== 'string' || typeof values['recovery-key'] !== 'string') throw new CliError('mydoc restore needs --from TARGET and --recovery-key FILE', 2);
  return restoreCommand(await configFrom(values.config, io), {
    from: values.from,
    authFile: values['auth-file'] as string | undefined,
    recoveryKey: values['recovery-key'],
    pc: values.pc as string | undefined,
    snapshot: (values.snapshot as string | undefined) ?? 'latest',
    deviceKey: values['device-key'] as string | undefined,
    stdout: io.stdout,
    stderr: io.stderr,
  });
}

async function cmdRecover(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { ...TARGET_OPTIONS, list: { type: 'boolean' }, extract: { type: 'string' }, to: { type: 'string' }, 'audit-log': { type: 'string' }, 'trust-file': { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  if (typeof values.from !== 'string' || typeof values['recovery-key'] !== 'string' || typeof values.pc !== 'string') {
    throw new CliError('mydoc recover needs --recovery-key FILE, --from TARGET and --pc PCID', 2);
  }
  return recoverCommand({
    from: values.from,
    authFile: values['auth-file'] as string | undefined,
    recoveryKey: values['recovery-key'],
    pc: values.pc,
    snapshot: (values.snapshot as string | undefined) ?? 'latest',
    list: values.list === true,
    extract: values.extract as string | undefined,
    to: values.to as string | undefined,
    auditLog: values['audit-log'] as string | undefined,
    deviceKey: values['device-key'] as string | undefined,
    trustFile: values['trust-file'] as string | undefined,
    stdout: io.stdout,
    stderr: io.stderr,
  });
}

async function cmdUserEnroll(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string' } }, 1);
  if (values.help) return io.stdout(HELP), 0;
  const name = positionals[0];
  if (!name) throw new CliError('usage: mydoc user enroll NAME [--config FILE]', 2);
  const config = await configFrom(values.config, io);
  if (config.directory.kind !== 'ldap') throw new CliError('"mydoc user enroll" is for a company directory (directory.kind: ldap); use "mydoc user add" with the local directory');
  await requireInitialised(config);
  const directory = await buildDirectory(config);
  const user = normalizeUserName(name);
  const event = { actor: localActor(), action: 'user.enrol', target: user } as const;
  try {
    await enrolUser({ dataDir: config.dataDir, pcId: config.pcId, user, source: directory.secrets, recoveryPublicKey: await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key') });
  } catch (err) {
    await recordAuditEvent(config.dataDir, { ...event, decision: 'deny', reason: `mydoc user enroll: ${(err as Error).message}` });
    throw err;
  }
  await recordAuditEvent(config.dataDir, { ...event, decision: 'allow', reason: 'mydoc user enroll' });
  io.stdout(`enrolled "${user}": network secret created in the directory, vault created on this PC\n`);
  return 0;
}

/** The actor of a CLI command in the audit log: the local account that ran it. */
function localActor(): string {
  return `local:${userInfo().username}`;
}

async function cmdDemo(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { dir: { type: 'string' }, port: { type: 'string' } }, 0);
  if (values.help) return io.stdout(HELP), 0;
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new CliError(`--port must be a port number, not "${values.port}"`, 2);
  await runDemo((values.dir as string | undefined) ?? 'demo', port, version(), io.stdout, io.stderr);
  return 0;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case undefined:
        io.stderr(HELP);
        return 2;
      case '--help':
      case '-h':
      case 'help':
        io.stdout(HELP);
        return 0;
      case '--version':
      case '-v':
        io.stdout(`mydoc ${version()}\n`);
        return 0;
      case 'init':
        return await cmdInit(args, io);
      case 'user':
        return await cmdUser(args, io);
      case 'demo':
        return await cmdDemo(args, io);
      case 'serve':
        return await cmdServe(args, io);
      case 'locks':
        return await cmdLocks(args, io);
      case 'audit':
        return await cmdAudit(args, io);
      case 'keys':
        return await cmdKeys(args, io);
      case 'takeout':
        return await cmdTakeout(args, io);
      case 'backup':
        return await cmdBackup(args, io);
      case 'restore':
        return await cmdRestore(args, io);
      case 'stop':
        return await cmdStop(args, io);
      case 'recover':
        return await cmdRecover(args, io);
      default:
        throw new CliError(`unknown command "${command}" (see mydoc --help)`, 2);
    }
  } catch (err) {
    const exitCode = err instanceof CliError ? err.exitCode : 1;
    const known = err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('ERR_');
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`mydoc: ${known ? '' : 'internal error: '}${message.replace(/\s*\n\s*/g, ' ')}\n`);
    return exitCode;
  }
}
