/**
 * The `mydoc` command line. Every command exits 0 on success and non-zero
 * with one line on standard error on failure (2 for usage errors).
 *
 * The commands are declared once, in the table below (each group in its own
 * file: init.ts, users.ts, serve.ts, locks.ts, takeout.ts, backup.ts,
 * audit.ts, console.ts, demo.ts), with their typed options; command.ts parses and checks
 * the arguments and generates the help and the usage errors from it.
 */
import { auditCommands } from './audit.js';
import { backupCommands } from './backup.js';
import { commandsHelp, optionHelp, parseCommand, synopsis, type Command, type Io } from './command.js';
import { demoCommand } from './demo.js';
import { CliError } from './errors.js';
import { initCommand } from './init.js';
import { consoleCommands } from './console.js';
import { configOption } from './inputs.js';
import { lockCommands } from './locks.js';
import { serveCommand } from './serve.js';
import { takeoutCommands } from './takeout.js';
import { userCommands } from './users.js';
import { version } from './version.js';


/** Every command, in the order of the help. */
const COMMANDS: readonly Command[] = [initCommand, ...userCommands, serveCommand, ...lockCommands, ...takeoutCommands, ...backupCommands, ...auditCommands, ...consoleCommands, demoCommand];

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
  stdoutIsTty: Boolean(process.stdout.isTTY),
  env: process.env,
};

/** Command names have at most this many words (e.g. `console pc add`). */
const MAX_NAME_WORDS = 3;

/** Finds the command `argv` names (its longest name first: `backup list` before `backup`) and runs it. */
async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const first = argv[0]!;
  const group = COMMANDS.filter((c) => c.name === first || c.name.startsWith(`${first} `));
  for (let words = Math.min(MAX_NAME_WORDS, argv.length); words >= 1; words--) {
    const cmd = COMMANDS.find((c) => c.name === argv.slice(0, words).join(' '));
    if (!cmd) continue;
    const parsed = parseCommand(cmd, argv.slice(words), group);
    if (parsed.help) return io.stdout(helpOf(cmd.name)), 0;
    return cmd.run(parsed, io);
  }
  if (group.length === 0) throw new CliError(`unknown command "${first}" (see mydoc --help)`, 2);
  // The longest start of argv that begins commands (e.g. `console pc`), and the word after it.
  let words = 1;
  while (words < argv.length && COMMANDS.some((c) => c.name.startsWith(`${argv.slice(0, words + 1).join(' ')} `))) words++;
  const prefix = argv.slice(0, words).join(' ');
  const next = argv[words];
  if (next !== undefined && !next.startsWith('-')) throw new CliError(`unknown command "${prefix} ${next}" (see mydoc --help)`, 2);
  if (argv.includes('--help')) return io.stdout(helpOf(prefix)), 0;
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${prefix} `));
  throw new CliError(subs.length === 1 ? `usage: ${synopsis(subs[0]!)}` : `usage: mydoc ${prefix} ${subs.map((c) => c.name.slice(prefix.length + 1)).join('|')} ... (see mydoc ${prefix} --help)`, 2);
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
