/**
 * The `mydoc` command line. Every command exits 0 on success and non-zero
 * with one line on standard error on failure (2 for usage errors).
 *
 * The commands are declared once, in the table below (each group in its own
 * file: init.ts, users.ts, serve.ts, locks.ts, takeout.ts, backup.ts,
 * audit.ts, demo.ts), with their typed options; command.ts parses and checks
 * the arguments and generates the help and the usage errors from it.
 */
import { auditCommands } from './audit.js';
import { backupCommands } from './backup.js';
import { commandsHelp, optionHelp, parseCommand, synopsis, type Command, type Io } from './command.js';
import { demoCommand } from './demo.js';
import { CliError } from './errors.js';
import { initCommand } from './init.js';
import { configOption } from './inputs.js';
import { lockCommands } from './locks.js';
import { serveCommand } from './serve.js';
import { takeoutCommands } from './takeout.js';
import { userCommands } from './users.js';
import { version } from './version.js';


/** Every command, in the order of the help. */
const COMMANDS: readonly Command[] = [initCommand, ...userCommands, serveCommand, ...lockCommands, ...takeoutCommands, ...backupCommands, ...auditCommands, demoCommand];

const TITLE = 'mydoc — My Doc Manager: encrypted documents for the company laptop\n';
const EXIT_STATUS = 'Exit status: 0 success, 1 failure, 2 usage error (mydoc backup: 3 partial).\n';

function help(): string {
  return (
    `${TITLE}\nUsage:\n${commandsHelp(COMMANDS, false)}` +
    '  mydoc --help | --version\n  mydoc COMMAND --help\n      The options of COMMAND (of each command of a group, e.g. mydoc backup --help).\n' +
    `\nOptions:\n${optionHelp('config', configOption)}\n${EXIT_STATUS}`
  );
}

/** The help of `name` (a command, or the first word of a group): each command of it with its options. */
function helpOf(name: string): string {
  const commands = COMMANDS.filter((c) => c.name === name || c.name.startsWith(`${name} `));
  return `Usage:\n${commandsHelp(commands, true)}\n${EXIT_STATUS}`;
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

/** Finds the command `argv` names (two words, e.g. `backup list`, before one) and runs it. */
async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const [first, second] = argv;
  const group = COMMANDS.filter((c) => c.name === first || c.name.startsWith(`${first} `));
  const cmd = (second !== undefined && COMMANDS.find((c) => c.name === `${first} ${second}`)) || COMMANDS.find((c) => c.name === first);
  if (!cmd) {
    if (group.length === 0) throw new CliError(`unknown command "${first}" (see mydoc --help)`, 2);
    if (second !== undefined && !second.startsWith('-')) throw new CliError(`unknown command "${first} ${second}" (see mydoc --help)`, 2);
    if (argv.includes('--help')) return io.stdout(helpOf(first!)), 0;
    const subs = group.map((c) => c.name.slice(first!.length + 1));
    throw new CliError(group.length === 1 ? `usage: ${synopsis(group[0]!)}` : `usage: mydoc ${first} ${subs.join('|')} ... (see mydoc ${first} --help)`, 2);
  }
  const parsed = parseCommand(cmd, argv.slice(cmd.name.split(' ').length), group);
  if (parsed.help) return io.stdout(helpOf(cmd.name)), 0;
  return cmd.run(parsed, io);
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  try {
    switch (argv[0]) {
      case undefined:
        io.stderr(help());
        return 2;
      case '--help':
      case '-h':
      case 'help':
        io.stdout(help());
        return 0;
      case '--version':
      case '-v':
        io.stdout(`mydoc ${version()}\n`);
        return 0;
      default:
        return await dispatch(argv, io);
    }
  } catch (err) {
    const exitCode = err instanceof CliError ? err.exitCode : 1;
    const known = err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('ERR_');
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`mydoc: ${known ? '' : 'internal error: '}${message.replace(/\s*\n\s*/g, ' ')}\n`);
    return exitCode;
  }
}
