/**
 * The command table's machinery: a command is declared once, with its
 * positional arguments and typed options; from that declaration come the
 * parsing (node:util parseArgs underneath), the checks every command shares
 * (required options, numbers, choices, options that only go with another),
 * the usage errors, and the help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './errors.js';

export type Out = (text: string) => void;

/** What a command may touch of its process; tests pass their own. */
export interface Io {
  stdout: Out;
  stderr: Out;
  stdin: () => Promise<Buffer>;
  stdinIsTty: boolean;
  /** A progress bar is drawn on standard error when it is a terminal. */
  stderrIsTty?: boolean;
  /** A service's log is printed for a person (not as JSON lines) when standard output is a terminal. */
  stdoutIsTty?: boolean;
  env: NodeJS.ProcessEnv;
}

interface OptionBase {
  /** One line for the help. */
  description: string;
  /** The value's name in the help (default FILE for a path, N for a number, VALUE otherwise). */
  value?: string;
  required?: boolean;
  /**
   * Where the value comes from when the option is not given (e.g. an
   * environment variable), as the help states it. Such an option is always
   * read, so the help shows it bare, not in [brackets].
   */
  fallback?: string;
  /** This option only goes with that one (e.g. `--pc` with `--from`). */
  with?: string;
}

export interface StringOption extends OptionBase {
  /** A path is a string; the type names what it holds. */
  type: 'string' | 'path';
  default?: string;
  choices?: readonly string[];
  /** The value may start with "-" (e.g. a base64url id): `--id -x` is read as `--id=-x`. */
  dashValue?: boolean;
}

export interface NumberOption extends OptionBase {
  type: 'number';
  default?: number;
  min: number;
  max?: number;
  integer?: boolean;
}

export interface BooleanOption extends OptionBase {
  type: 'boolean';
}

export type OptionSpec = StringOption | NumberOption | BooleanOption;
export type Options = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S extends BooleanOption
  ? boolean
  : S extends NumberOption
    ? number
    : S extends { choices: readonly (infer C)[] }
      ? C
      : string;

/** The parsed values: booleans are always there, required options and options with a default too. */
export type Values<O extends Options> = {
  readonly [K in keyof O]: O[K] extends BooleanOption | { required: true } | { default: string | number } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

export interface CommandSpec<O extends Options> {
  /** The words after `mydoc`, e.g. `backup list`. */
  name: string;
  /** Required positional arguments, by their name in the help (e.g. NAME). */
  positionals?: readonly string[];
  options: O;
  /** What the command does, for the help (wrapped there). */
  summary: string;
  /** Runs the command with checked values; returns the exit status. */
  run: (args: { values: Values<O>; positionals: readonly string[] }, io: Io) => Promise<number>;
}

/** A command of the table, its option types erased. */
export interface Command {
  name: string;
  positionals: readonly string[];
  options: Options;
  summary: string;
  run: (args: { values: Record<string, unknown>; positionals: readonly string[] }, io: Io) => Promise<number>;
}

/** Declares a command; `run` receives values typed from `options`. */
export function command<const O extends Options>(spec: CommandSpec<O>): Command {
  return { positionals: [], ...spec } as unknown as Command;
}

const usageError = (message: string): CliError => new CliError(message, 2);

/** "a", "a and b", "a, b and c" (`last` joins the last two). */
function list(items: readonly string[], last = 'and'): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} ${last} ${items.at(-1)}`;
}

function placeholder(spec: OptionSpec): string {
  if (spec.type === 'boolean') return '';
  if (spec.value) return spec.value;
  if (spec.type === 'string' && spec.choices) return spec.choices.join('|');
  return spec.type === 'path' ? 'FILE' : spec.type === 'number' ? 'N' : 'VALUE';
}

/** `--name VALUE` (or `--name` for a flag). */
function optionText(name: string, spec: OptionSpec): string {
  const value = placeholder(spec);
  return value ? `--${name} ${value}` : `--${name}`;
}

/** The words of a command line: `mydoc user add`, `NAME`, `--password-stdin`, `[--admin]`, `--config FILE`. */
function synopsisParts(cmd: Command): string[] {
  const parts = [`mydoc ${cmd.name}`, ...cmd.positionals];
  for (const [name, spec] of Object.entries(cmd.options)) {
    parts.push(spec.required || spec.fallback !== undefined ? optionText(name, spec) : `[${optionText(name, spec)}]`);
  }
  return parts;
}

/** The command line of a command, e.g. `mydoc user add NAME --password-stdin [--admin] --config FILE`. */
export function synopsis(cmd: Command): string {
  return synopsisParts(cmd).join(' ');
}

/** The command line for the help, continued under its first argument when longer than a line. */
function synopsisLines(cmd: Command, indent: string, width = 78): string {
  const [head, ...rest] = synopsisParts(cmd);
  const lines = [`${indent}${head}`];
  const hang = ' '.repeat(indent.length + head!.length);
  for (const part of rest) {
    if (lines.at(-1)!.length + 1 + part.length > width && lines.at(-1)!.trim() !== head) lines.push(`${hang} ${part}`);
    else lines[lines.length - 1] += ` ${part}`;
  }
  return lines.join('\n') + '\n';
}

/** `text` wrapped to `width` columns, each line indented by `indent`. */
function wrap(text: string, indent: string, width = 78): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n') + '\n';
}

/** One option's line(s) in the help. */
export function optionHelp(name: string, spec: OptionSpec): string {
  const notes = [
    spec.required ? 'required' : '',
    spec.type !== 'boolean' && spec.default !== undefined ? `default ${spec.default}` : '',
    spec.fallback ? `default ${spec.fallback}` : '',
    spec.with ? `with --${spec.with}` : '',
  ].filter(Boolean);
  const text = `${spec.description}${notes.length ? ` (${notes.join('; ')})` : ''}`;
  const head = `      ${optionText(name, spec)}`;
  const column = 32;
  if (head.length < column) return head.padEnd(column) + wrap(text, ' '.repeat(column)).trimStart();
  return `${head}\n${wrap(text, ' '.repeat(column))}`;
}

/** The help of some commands: each one's command line, summary and, with `withOptions`, its options. */
export function commandsHelp(commands: readonly Command[], withOptions: boolean): string {
  return commands
    .map((cmd) => {
      let text = synopsisLines(cmd, '  ') + wrap(cmd.summary, '      ');
      if (withOptions) for (const [name, spec] of Object.entries(cmd.options)) text += optionHelp(name, spec);
      return text;
    })
    .join(withOptions ? '\n' : '');
}

/**
 * Checks a number given on the command line: not empty, a finite number as
 * Number() reads it, within [min, max], whole when `integer`. The one place
 * the command line's numbers are checked.
 */
function numberValue(name: string, text: string, spec: Pick<NumberOption, 'min' | 'max' | 'integer'>): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < spec.min || (spec.max !== undefined && n > spec.max) || (spec.integer && !Number.isInteger(n))) {
    const range = spec.max === undefined ? `of at least ${spec.min}` : `from ${spec.min} to ${spec.max}`;
    throw usageError(`--${name} must be a number ${range}${spec.integer ? ' (a whole number; ' : ' ('}got "${text}")`);
  }
  return n;
}

/**
 * `--name VALUE` as `--name=VALUE` for the options in `names`, so a value
 * starting with "-" is the option's value: parseArgs refuses `--id -x` as
 * ambiguous, and the request ids the service issues (base64url) may start
 * with "-".
 */
function valuesMayStartWithDash(args: readonly string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return [...out, ...args.slice(i)];
    if (names.includes(arg) && i + 1 < args.length) out.push(`${arg}=${args[++i]}`);
    else out.push(arg);
  }
  return out;
}

export type Parsed = { help: true } | { help: false; values: Record<string, unknown>; positionals: readonly string[] };

/**
 * Parses and checks the arguments of `cmd` (after its name). `group` is the
 * table's commands of the same first word: an option one of them takes is
 * named as theirs when given to another.
 */
export function parseCommand(cmd: Command, args: readonly string[], group: readonly Command[]): Parsed {
  const specs = Object.entries(cmd.options);
  const dashNames = specs.filter(([, s]) => s.type !== 'boolean' && s.type !== 'number' && s.dashValue).map(([n]) => `--${n}`);
  const config = {
    args: valuesMayStartWithDash(args, dashNames),
    options: { ...Object.fromEntries(specs.map(([n, s]) => [n, { type: s.type === 'boolean' ? 'boolean' : 'string' }])), help: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  } satisfies ParseArgsConfig;
  let parsed;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') misplaced(cmd, config, group);
    throw usageError((err as Error).message);
  }
  const given = parsed.values as Record<string, string | boolean | undefined>;
  if (given.help) return { help: true };
  if (parsed.positionals.length > cmd.positionals.length) {
    const word = parsed.positionals[cmd.positionals.length]!;
    // `mydoc backup frobnicate`: a word where a subcommand could stand.
    if (cmd.positionals.length === 0 && group.some((c) => c.name.startsWith(`${cmd.name} `))) throw usageError(`unknown command "${cmd.name} ${word}" (see mydoc --help)`);
    throw usageError(`unexpected argument "${word}"`);
  }
  if (parsed.positionals.length < cmd.positionals.length || parsed.positionals.includes('')) throw usageError(`usage: ${synopsis(cmd)}`);
  const required = specs.filter(([, s]) => s.required);
  if (required.some(([n]) => given[n] === undefined)) throw usageError(`mydoc ${cmd.name} needs ${list(required.map(([n, s]) => optionText(n, s)))}`);
  for (const [name, spec] of specs) {
    if (spec.with !== undefined && given[name] !== undefined && given[spec.with] === undefined) {
      const partners = specs.filter(([, s]) => s.with === spec.with).map(([n]) => `--${n}`);
      throw usageError(`${list(partners)} go${partners.length === 1 ? 'es' : ''} with ${optionText(spec.with, cmd.options[spec.with]!)}`);
    }
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of specs) {
    const text = given[name];
    if (spec.type === 'boolean') values[name] = text === true;
    else if (typeof text !== 'string') values[name] = spec.default;
    else if (spec.type === 'number') values[name] = numberValue(name, text, spec);
    else if (spec.choices && !spec.choices.includes(text)) throw usageError(`--${name} must be ${list(spec.choices, 'or')} (got "${text}")`);
    else values[name] = text;
  }
  return { help: false, values, positionals: parsed.positionals };
}

/** Throws "--from is for ..." when the unknown option belongs to other commands of the group. */
function misplaced(cmd: Command, config: ParseArgsConfig, group: readonly Command[]): void {
  const { tokens } = parseArgs({ ...config, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name in cmd.options || token.name === 'help') continue;
    const owners = group.filter((c) => token.name in c.options).map((c) => `"${c.name}"`);
    if (owners.length > 0) throw usageError(`--${token.name} is for ${list(owners)}, not "${cmd.name}"`);
  }
}
