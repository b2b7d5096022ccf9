/**
 * Reading a YAML configuration file into typed values: the YAML document
 * (errors and warnings both refused, with line and column), and readers for
 * mappings, strings, paths, numbers, booleans and lists that refuse unknown
 * keys and wrong types with a ConfigError naming the full dotted key. Each
 * process's configuration module (the agent's: config.ts) declares its
 * schema with these.
 */
import { resolve } from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { ConfigError } from './errors.js';

export type Mapping = Record<string, unknown>;

/** The key of errors about the file as a whole. */
export const FILE_KEY = '(file)';

export function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  // Warnings (e.g. an unknown !tag) are errors too: a config file must mean exactly what it says.
  const problem: YAMLError | undefined = document.errors[0] ?? document.warnings[0];
  if (problem !== undefined) {
    const { line, col } = lineCounter.linePos(problem.pos[0]);
    throw new ConfigError(FILE_KEY, `${file} line ${line}, column ${col}: ${problem.message}`);
  }
  return document.toJS();
}

export function readNumber(map: Mapping, parentKey: string, name: string, min: number, max: number, integer = false): number | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(dotted(parentKey, name), `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${describe(value)})`);
  }
  return value;
}

export function readBoolean(map: Mapping, parentKey: string, name: string): boolean | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new ConfigError(dotted(parentKey, name), `must be true or false (got ${describe(value)})`);
  return value;
}

export function readStringList(map: Mapping, parentKey: string, name: string): string[] | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new ConfigError(dotted(parentKey, name), `must be a list (got ${describe(value)})`);
  return value.map((item, i) => {
    if (typeof item !== 'string' || item === '') throw new ConfigError(`${dotted(parentKey, name)}.${i}`, `must be a non-empty string (got ${describe(item)})`);
    return item;
  });
}

export function dotted(parentKey: string, name: string): string {
  return parentKey === '' ? name : `${parentKey}.${name}`;
}

export function ownValue(map: Mapping, name: string): unknown {
  return Object.hasOwn(map, name) ? map[name] : undefined;
}

export function asMapping(value: unknown, key: string, problem: string): Mapping {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key, `${problem} (got ${describe(value)})`);
  }
  return value as Mapping;
}

export function rejectUnknownKeys(map: Mapping, parentKey: string, allowed: readonly string[]): void {
  const unknown = Object.keys(map).find((name) => !allowed.includes(name));
  if (unknown !== undefined) {
    throw new ConfigError(dotted(parentKey, unknown), `unknown key (allowed here: ${allowed.join(', ')})`);
  }
}

/** A nested mapping with only `allowed` keys; an absent section reads as empty. */
export function readSection(parent: Mapping, parentKey: string, name: string, allowed: readonly string[]): Mapping {
  const key = dotted(parentKey, name);
  const value = ownValue(parent, name);
  if (value === undefined) return {};
  const section = asMapping(value, key, 'must be a mapping of keys');
  rejectUnknownKeys(section, key, allowed);
  return section;
}

export function readString(map: Mapping, parentKey: string, name: string): string | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(dotted(parentKey, name), `must be a non-empty string (got ${describe(value)})`);
  }
  return value;
}

/** A path string, resolved against `baseDir` when relative. */
export function readPath(map: Mapping, parentKey: string, name: string, baseDir: string): string | undefined {
  const value = readString(map, parentKey, name);
  if (value === undefined) return undefined;
  if (value.includes('\0')) {
    throw new ConfigError(dotted(parentKey, name), 'must be a path without NUL characters');
  }
  return resolve(baseDir, value);
}

export function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new ConfigError(key, 'is required but missing');
  return value;
}

export function oneOf<const T extends string>(value: string, allowed: readonly T[], key: string): T {
  const match = allowed.find((candidate) => candidate === value);
  if (match === undefined) {
    throw new ConfigError(key, `must be one of: ${allowed.join(', ')} (got ${describe(value)})`);
  }
  return match;
}

/** A short, quoted rendering of a YAML value for error messages. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
