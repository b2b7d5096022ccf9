/**
 * Offline use of a take-out key: admission of a user on every request, and
 * the password check, which opens slot T with the key's K_to.
 *
 * Security considerations: a key is only ever looked up under the user who
 * logs in, and slot T is bound to its user and request, so one user's key
 * cannot open another's vault; the vault opened is the user's own. A
 * refusal is audited (once per user and code) and locks the user's
 * take-out session; an expired key is destroyed. K_to is zeroed after use;
 * no token, K_to or password is logged or put in an error.
 */
import { join } from 'node:path';
import { Keyring } from '../../../crypto/keyring.js';
import { KeyringError, SlotOpenError } from '../../../crypto/errors.js';
import { KEYRING_FILE, userDir } from '../../../shares/vault/user-vaults.js';
import type { AuthResult } from '../../directory/directory.js';
import { normalizeUserName } from '../../directory/user-name.js';
import { openKto } from '../envelope.js';
import { TakeoutError } from '../errors.js';
import { iso, type AgentContext } from './context.js';

/**
 * Whether `user` may use the share offline now. A refusal is audited (once
 * per user and reason) and locks the user's take-out session; at expiry
 * slot T is destroyed.
 */
export async function admit(ctx: AgentContext, login: string): Promise<boolean> {
  const user = normalizeUserName(login);
  const result = await ctx.keys.validate(user);
  if ('claims' in result) return true;
  if (result.code === 'NONE') return false;
  await ctx.refusals.record(user, result.code, result.message);
  if (result.code === 'ERR_TAKEOUT_EXPIRED') await ctx.serial.run(() => ctx.expiry.destroy(user, 'expired'));
  else await ctx.expiry.lockSession(user);
  return false;
}

/**
 * Offline password check: opens slot T with the key's K_to and `password`,
 * and on success opens the user's vault (their own only).
 */
export async function authenticate(ctx: AgentContext, login: string, password: string): Promise<AuthResult> {
  const { opts, store } = ctx;
  const user = normalizeUserName(login);
  const result = await ctx.keys.validate(user);
  if (!('claims' in result)) return { ok: false, reason: 'no valid take-out key' };
  const { claims } = result;
  let keyring: Keyring;
  try {
    keyring = await Keyring.load(join(userDir(opts.dataDir, opts.pcId, user), KEYRING_FILE));
    if (keyring.takeoutRequestId !== claims.jti) throw new TakeoutError('ERR_TAKEOUT_SECRET', 'this user has no take-out slot for this key');
  } catch (err) {
    if (!(err instanceof TakeoutError || err instanceof KeyringError)) throw err;
    await ctx.refusals.record(user, 'ERR_TAKEOUT_SECRET', err.message);
    return { ok: false, reason: 'take-out key refused' };
  }
  let kTo: Buffer;
  try {
    kTo = await openKto(claims.kto, opts.deviceKey, 'mydoc-kto+json', { rid: claims.jti, user, pcId: opts.pcId });
  } catch (err) {
    await ctx.refusals.record(user, 'ERR_TAKEOUT_SECRET', (err as Error).message);
    return { ok: false, reason: 'take-out key refused' };
  }
  try {
    await keyring.unlockTakeout({ kTo, password, user, rid: claims.jti });
  } catch (err) {
    if (err instanceof SlotOpenError) return { ok: false, reason: 'wrong user name or password' };
    throw err;
  } finally {
    kTo.fill(0);
  }
  await opts.sessions.adoptTakeout(user, keyring);
  const key = store.state.keys[user];
  if (key && !key.used) await ctx.serial.run(() => store.update((d) => d.keys[user] && (d.keys[user].used = new Date(ctx.now()).toISOString())));
  await opts.audit.append({ actor: user, action: 'takeout.use', target: claims.jti, decision: 'allow', reason: `offline until ${iso(claims.exp)}` });
  return { ok: true, user, admin: false };
}
