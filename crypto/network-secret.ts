/**
 * Network secret sources: where slot N's K_dir lives. The production source
 * keeps K_dir in the company directory (policy/), so slot N opens only while
 * the directory is reachable. The source here keeps it in a local file and is
 * INSECURE: whoever has the disk has the secret. It exists only for the
 * embedded demo directory.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { NetworkSecretUnavailableError } from './errors.js';
import { writeFileAtomic } from './atomic-file.js';

export const NETWORK_SECRET_SIZE = 32;

export interface NetworkSecretSource {
  /** Stable name recorded in slot N, e.g. `insecure-local-file` or `ldap`. */
  readonly kind: string;
  /** True when the secret sits on the local disk (no protection for a lost PC). */
  readonly insecure: boolean;
  /** Returns K_dir for `user`; throws NetworkSecretUnavailableError when it cannot. */
  fetch(user: string): Promise<Buffer>;
  /** Creates a fresh K_dir for `user` (enrolment), replacing any former one, and returns it. */
  create(user: string): Promise<Buffer>;
}

/**
 * K_dir per user in one JSON file on the local disk. INSECURE: demo directory only.
 * Its errors do not name the file: their messages reach the user (HTTP 503).
 */
export class InsecureLocalFileSecretSource implements NetworkSecretSource {
  readonly kind = 'insecure-local-file';
  readonly insecure = true;

  constructor(private readonly file: string) {}

  async fetch(user: string): Promise<Buffer> {
    const all = await this.readAll();
    const b64 = all?.[user];
    if (b64 === undefined) {
      throw new NetworkSecretUnavailableError(`no network secret for user "${user}" in the insecure local secret file`);
    }
    const secret = Buffer.from(b64, 'base64');
    if (secret.length !== NETWORK_SECRET_SIZE) {
      throw new NetworkSecretUnavailableError(`the network secret of user "${user}" in the insecure local secret file is malformed`);
    }
    return secret;
  }

  async create(user: string): Promise<Buffer> {
    const all = (await this.readAll()) ?? {};
    const secret = randomBytes(NETWORK_SECRET_SIZE);
    all[user] = secret.toString('base64');
    await writeFileAtomic(this.file, JSON.stringify(all, null, 2) + '\n', 0o600);
    return secret;
  }

  private async readAll(): Promise<Record<string, string> | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new NetworkSecretUnavailableError(`cannot read the insecure local secret file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as Record<string, string>;
    } catch {
      throw new NetworkSecretUnavailableError(`the insecure local secret file is not valid JSON`);
    }
  }
}
