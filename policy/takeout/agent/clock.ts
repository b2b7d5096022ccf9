/**
 * The sealed last-seen time: the latest wall-clock time this PC has seen,
 * kept in `<dataDir>/takeout/clock.json` under an HMAC, so that a clock set
 * back to stretch a take-out period is noticed, also across restarts.
 *
 *   {"v":1,"lastSeen":<ms since epoch>,"setBack":<boolean>,"mac":<hex>}
 *   mac = HMAC-SHA-256(K_clock, "mydoc take-out clock v1" \0 lastSeen \0 setBack)
 *   K_clock = HKDF-SHA-256(ikm = device private key (PKCS#8 DER), salt = "",
 *                          info = "mydoc take-out clock v1", L = 32)
 *
 * A time more than TOLERANCE_MS before the last seen time means the clock
 * was set back: `setBack` is then sealed in (sticky across restarts and
 * clock corrections) until the directory is reachable again (`reset`).
 *
 * Security considerations: this defends against a user who can change the
 * clock (BIOS, guest settings) but not the service VM's files. Whoever can
 * write the data folder can also read the device key and forge the file; the
 * take-out period is then only as strong as that (documented limit). A file
 * that is missing while take-out keys are installed, or whose MAC fails, is
 * treated as a set-back clock (fail closed). The MAC is compared in
 * constant time. The time is advanced on disk at most every
 * PERSIST_EVERY_MS, and always when the set-back flag changes.
 */
import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../../crypto/atomic-file.js';

export const CLOCK_TOLERANCE_MS = 120_000;
const PERSIST_EVERY_MS = 30_000;
const LABEL = 'mydoc take-out clock v1';

interface ClockFile {
  v: 1;
  lastSeen: number;
  setBack: boolean;
  mac: string;
}

export class SealedClock {
  private persisted: number;

  private constructor(
    private readonly file: string,
    private readonly key: Buffer,
    private lastSeen: number,
    private setBack: boolean,
  ) {
    this.persisted = lastSeen;
  }

  /**
   * Reads the sealed time. A missing file starts from `now` unless
   * `expectFile` (keys are installed: a deleted file is tampering); a file
   * whose MAC fails counts as a set-back clock.
   */
  static async open(file: string, deviceKey: KeyObject, now: number, expectFile: boolean): Promise<SealedClock> {
    const key = Buffer.from(hkdfSync('sha256', deviceKey.export({ type: 'pkcs8', format: 'der' }), Buffer.alloc(0), LABEL, 32));
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      const clock = new SealedClock(file, key, now, expectFile);
      await clock.save();
      return clock;
    }
    const parsed = parseClock(text);
    if (!parsed || !timingSafeEqual(Buffer.from(parsed.mac, 'hex'), mac(key, parsed.lastSeen, parsed.setBack))) {
      const clock = new SealedClock(file, key, now, true);
      await clock.save();
      return clock;
    }
    return new SealedClock(file, key, parsed.lastSeen, parsed.setBack);
  }

  /** True when the clock was set back (now or earlier, until `reset`). */
  get wasSetBack(): boolean {
    return this.setBack;
  }

  /**
   * Records `now`: a time before the last seen one (beyond the tolerance)
   * marks the clock as set back; a later one advances the sealed time.
   * Returns false when the clock is (or was) set back.
   */
  async observe(now: number): Promise<boolean> {
    if (!this.setBack && now < this.lastSeen - CLOCK_TOLERANCE_MS) {
      this.setBack = true;
      await this.save();
      return false;
    }
    if (now > this.lastSeen) this.lastSeen = now;
    if (this.lastSeen - this.persisted >= PERSIST_EVERY_MS) await this.save();
    return !this.setBack;
  }

  /** The directory answers: trust the clock again from `now` (which may be earlier: an NTP correction). */
  async reset(now: number): Promise<void> {
    if (!this.setBack && now >= this.lastSeen) {
      await this.observe(now);
      return;
    }
    this.setBack = false;
    this.lastSeen = now;
    await this.save();
  }

  private async save(): Promise<void> {
    const data: ClockFile = { v: 1, lastSeen: this.lastSeen, setBack: this.setBack, mac: mac(this.key, this.lastSeen, this.setBack).toString('hex') };
    await writeFileAtomic(this.file, JSON.stringify(data) + '\n', 0o600);
    this.persisted = this.lastSeen;
  }
}

function mac(key: Buffer, lastSeen: number, setBack: boolean): Buffer {
  return createHmac('sha256', key).update(`${LABEL}\0${lastSeen}\0${setBack}`).digest();
}

function parseClock(text: string): ClockFile | undefined {
  try {
    const v = JSON.parse(text) as ClockFile;
    if (v.v !== 1 || !Number.isSafeInteger(v.lastSeen) || typeof v.setBack !== 'boolean' || !/^[0-9a-f]{64}$/.test(v.mac)) return undefined;
    return v;
  } catch {
    return undefined;
  }
}
