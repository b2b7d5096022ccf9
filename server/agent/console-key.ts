/**
 * The console key this PC pins: the console's issuer public key (PEM), as
 * the first welcome on the link carries it. Every grant and share rule the
 * console sends is checked against it (policy/grants).
 *
 * Security considerations: the first key seen is written 0600, atomically,
 * to <dataDir>/console-key.pem and kept; a later welcome with a different
 * key is logged as an error and NOT taken (a console that lost its key, or
 * another one, must be re-enrolled by removing the file on the PC). A key
 * that does not parse is never pinned. The key is public; nothing secret
 * is here.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { parseIssuerPublicKey, type IssuerPublicKey } from '../../policy/takeout/issuer-keys.js';
import { dataFolder } from '../../shares/data-folder.js';

type Logger = { error: (obj: object, msg: string) => void; info: (msg: string) => void };

/** What a welcome's key did: pinned now, the same as pinned, or refused (different or unreadable). */
export type PinOutcome = 'pinned' | 'same' | 'refused';

export class ConsoleKeyPin {
  private constructor(
    private readonly file: string,
    private key: IssuerPublicKey | undefined,
  ) {}

  /** Reads the pinned key, if any; a pinned file that does not parse is an error (not silently replaced). */
  static async load(dataDir: string): Promise<ConsoleKeyPin> {
    const file = dataFolder(dataDir).consoleKey;
    let pem: string | undefined;
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = pem === undefined ? undefined : await parseIssuerPublicKey(pem, `the pinned console key ${file}`);
    return new ConsoleKeyPin(file, key);
  }

  /** The pinned key, or undefined before the first welcome. */
  current(): IssuerPublicKey | undefined {
    return this.key;
  }

  /** The key of a welcome: pinned when none is, compared with the pinned one otherwise. */
  async offer(pem: string, logger: Logger): Promise<PinOutcome> {
    let offered: IssuerPublicKey;
    try {
      offered = await parseIssuerPublicKey(pem, 'the console key of the welcome');
    } catch (err) {
      logger.error({ code: (err as { code?: string }).code }, 'console link: the welcome carries a console key that is not an issuer public key; not pinned');
      return 'refused';
    }
    if (this.key) {
      if (offered.kid === this.key.kid) return 'same';
      logger.error({ pinned: this.key.kid, offered: offered.kid }, `console link: the console sent a different console key than the one pinned in ${this.file}; it is NOT taken (grants and share rules signed with it are refused)`);
      return 'refused';
    }
    await writeFileAtomic(this.file, pem, 0o600);
    this.key = offered;
    logger.info(`console link: pinned the console key ${offered.kid}`);
    return 'pinned';
  }
}
