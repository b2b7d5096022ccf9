/**
 * The online check, run whenever the company directory answers: the clock
 * is trusted again, refusals are recorded afresh, slot T is destroyed for
 * keys used offline, revoked or expired, revoked pending requests are
 * dropped, and revocations past their key's expiry are forgotten.
 */
import type { AgentContext } from './context.js';

export function onlineCheck(ctx: AgentContext): Promise<void> {
  const { store } = ctx;
  return ctx.serial.run(async () => {
    const nowS = Math.floor(ctx.now() / 1000);
    await ctx.clock.reset(ctx.now());
    ctx.refusals.clear();
    for (const [user, key] of Object.entries(store.state.keys)) {
      const why = store.state.revoked[key.jti] !== undefined ? 'revoked' : key.used ? 'back online after an offline use' : nowS >= key.exp ? 'expired' : undefined;
      if (why) await ctx.expiry.destroy(user, why);
    }
    for (const [rid, request] of Object.entries(store.state.requests)) {
      if (store.state.revoked[rid] !== undefined) await ctx.expiry.dropRequest(request, 'revoked');
    }
    const stale = Object.entries(store.state.revoked).filter(([, exp]) => exp < nowS);
    if (stale.length > 0) await store.update((d) => stale.forEach(([jti]) => delete d.revoked[jti]));
  });
}
