/**
 * The users file of the embedded `local` directory: users and scrypt
 * password hashes in one JSON file, and optionally groups
 * (`"groups": {"mydoc-approvers": {"users": ["alice"], "groups": ["leads"]}}`,
 * which the console maps to its administrators' roles). The local directory stands in for the
 * company directory in the demo and in tests.
 *
 * Security considerations: passwords are stored as scrypt hashes
 * (N=2^15, r=8, p=1, 16-byte salt) and compared in constant time; a
 * verification for an unknown user costs the same as for a known one.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../../crypto/atomic-file.js';
import { DirectoryError } from '../errors.js';

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const HASH_SIZE = 32;
export const MIN_PASSWORD_LENGTH = 8;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface UserRecord {
  hash: string; // scrypt$N$r$p$salt$hash (base64)
  created: string;
  /** A mydoc administrator (take-out approvals); absent means false. */
  admin?: true;
}

/** A group of the local directory: its user names and the names of groups inside it (nested membership counts). */
export interface GroupRecord {
  users?: string[];
  groups?: string[];
}

interface UsersFile {
  format: 'mydoc-local-users';
  version: 1;
  users: Record<string, UserRecord>;
  /** Optional (the console's roles): group name -> members. */
  groups?: Record<string, GroupRecord>;
}

/** The names of `wanted` that `user` is in, directly or through groups inside groups (a cycle ends the walk). */
function groupsOfUser(groups: Record<string, GroupRecord>, user: string, wanted: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const name of wanted) {
    const seen = new Set<string>();
    const stack = [name];
    while (stack.length > 0) {
      const group = groups[stack.pop()!];
      if (!group) continue;
      if ((group.users ?? []).some((u) => userKey(u) === user)) {
        found.add(name);
        break;
      }
      for (const inner of group.groups ?? []) if (!seen.has(inner)) stack.push((seen.add(inner), inner));
    }
  }
  return found;
}

function isStringList(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, HASH_SIZE, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const DUMMY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(HASH_SIZE).toString('base64')}`;

async function checkPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** The canonical key of a user name in this directory (case-insensitive). */
function userKey(name: string): string {
  return name.toLowerCase();
}

export function validateUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new DirectoryError('ERR_USER_NAME', `invalid user name "${name}": use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return name;
}

export function validatePassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new DirectoryError('ERR_PASSWORD_POLICY', `the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  return password;
}

/** The users and their password hashes, read from the file on every call and replaced atomically on change. */
export class LocalUsersFile {
  constructor(private readonly file: string) {}

  async has(name: string): Promise<boolean> {
    return (await this.read()).users[userKey(name)] !== undefined;
  }

  /** Adds a user; ERR_USER_EXISTS if the name (in any case) is taken. */
  async add(name: string, password: string, opts: { admin?: boolean } = {}): Promise<void> {
    validateUserName(name);
    validatePassword(password);
    const data = await this.read();
    if (data.users[userKey(name)]) throw new DirectoryError('ERR_USER_EXISTS', `user "${name}" already exists in the local directory`);
    data.users[userKey(name)] = { hash: await hashPassword(password), created: new Date().toISOString(), ...(opts.admin && { admin: true as const }) };
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
  }

  /** Sets (creates or replaces) a group's members. */
  async setGroup(group: string, members: GroupRecord): Promise<void> {
    validateUserName(group);
    const data = await this.read();
    data.groups = { ...data.groups, [group]: { users: [...(members.users ?? [])], groups: [...(members.groups ?? [])] } };
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
  }

  /** The user's role when the password is theirs, else undefined; constant-time, and as slow for unknown users. */
  async verify(name: string, password: string): Promise<{ admin: boolean } | undefined> {
    const record = (await this.read()).users[userKey(name)];
    const ok = await checkPassword(password, record?.hash ?? DUMMY_HASH);
    return ok && record !== undefined ? { admin: record.admin === true } : undefined;
  }

  /** Which of `wanted` groups the user is in (nested) when the password is theirs, else undefined; as slow for unknown users. */
  async verifyMember(name: string, password: string, wanted: readonly string[]): Promise<Set<string> | undefined> {
    const data = await this.read();
    const record = data.users[userKey(name)];
    const ok = await checkPassword(password, record?.hash ?? DUMMY_HASH);
    return ok && record !== undefined ? groupsOfUser(data.groups ?? {}, userKey(name), wanted) : undefined;
  }

  private async read(): Promise<UsersFile> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { format: 'mydoc-local-users', version: 1, users: {} };
      throw new DirectoryError('ERR_DIRECTORY_FILE', `cannot read the local directory ${this.file}: ${(err as Error).message}`);
    }
    try {
      const data = JSON.parse(text) as UsersFile;
      if (data.format !== 'mydoc-local-users' || data.version !== 1 || typeof data.users !== 'object') throw new Error('unexpected content');
      const groups: unknown = data.groups;
      if (groups !== undefined && (typeof groups !== 'object' || groups === null || !Object.values(groups).every((g: GroupRecord) => typeof g === 'object' && g !== null && isStringList(g.users) && isStringList(g.groups)))) {
        throw new Error('unexpected groups');
      }
      return data;
    } catch {
      throw new DirectoryError('ERR_DIRECTORY_FILE', `the local directory ${this.file} is malformed`);
    }
  }
}
