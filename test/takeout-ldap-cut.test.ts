/**
 * The take-out cases (test/helpers/takeout-cases.ts: expiry to the second,
 * clock set back, a period not yet begun, revocation, keys refused to other
 * users and wrong passwords, back online destroying slot T) against a real
 * slapd that is cut, with the real reachability monitor driving the gate as
 * `mydoc serve` wires it: once with slapd stopped (gone: connections
 * refused) and once with slapd frozen by SIGSTOP (hung: connections
 * accepted, never answered). The app runs in-process so that the take-out
 * clock can be injected.
 */
import { after, before, test } from 'node:test';
import { TAKEOUT_CASES } from './helpers/takeout-cases.js';
import { startTakeoutFixture } from './helpers/takeout.js';
import { startSlapd, type Slapd } from './helpers/slapd.js';

let slapd: Slapd;
before(async () => {
  slapd = await startSlapd();
});
after(async () => {
  await slapd?.stop();
});

for (const cut of ['gone', 'hung'] as const) {
  for (const c of TAKEOUT_CASES) {
    test(`slapd ${cut}: ${c.name}`, { timeout: 60_000 }, async () => {
      const f = await startTakeoutFixture({ ldap: { slapd, cut } });
      try {
        await c.run(f);
      } finally {
        await f.close();
      }
    });
  }
}
