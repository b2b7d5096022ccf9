/**
 * Test helper: a fleet to seed the console store with (console-web-server.ts): `count`
 * ordinary PCs (written in bulk) (a third offline for 40 days, backups 0 to 9 days old), a few with a
 * take-out, locked or never seen, and pending take-out requests; with `hostile`, PC,
 * user and reason values that try to inject markup, script and spreadsheet formulas.
 */
import { DAY, type Seed, type SeedPc, type SeedRequest } from './console-web-server.js';

export const HOSTILE_PC = '<script>window.__pwned=1</script>';
export const HOSTILE_USER = '<img src=x onerror="window.__pwned=2">';
export const HOSTILE_REASON = '<script>window.__pwned=3</script> & "quotes"';
export const FORMULA_USER = '=HYPERLINK("http://evil.example","x")';

const FIRST_NAMES = ['anna', 'bruno', 'chloe', 'david', 'emma', 'farid', 'greta', 'hugo', 'ines', 'jonas', 'kim', 'lea', 'marc', 'nora', 'omar', 'paula'];

export function fleetSeed(now: number, opts: { count: number; hostile: boolean }): Seed {
  const bulk: SeedPc[] = [];
  const pcs: SeedPc[] = [];
  for (let i = 1; i <= opts.count; i++) {
    const offline = i % 3 === 0;
    bulk.push({
      pcId: `pc-${String(i).padStart(5, '0')}`,
      lastSeenAt: offline ? now - 40 * DAY - i * 1000 : now - 10_000 - (i % 50) * 1000,
      status: { gate: 'online', takeoutUntil: null, users: [`${FIRST_NAMES[i % FIRST_NAMES.length]}${i}`], lastBackupAt: now - (i % 10) * DAY - 3_600_000, agentVersion: '0.1.0' },
    });
  }
  pcs.push(
    { pcId: 'laptop-sales-07', lastSeenAt: now - 20_000, status: { gate: 'takeout', takeoutUntil: now + 12 * 3_600_000, users: ['sofia'], lastBackupAt: now - DAY, agentVersion: '0.1.0' } },
    { pcId: 'laptop-field-02', lastSeenAt: now - 3 * DAY, status: { gate: 'locked', takeoutUntil: null, users: ['tom', 'ulla'], lastBackupAt: now - 12 * DAY, agentVersion: '0.0.9' } },
    { pcId: 'laptop-hr-01', lastSeenAt: now - 5_000, status: { gate: 'online', takeoutUntil: null, users: ['vera'], lastBackupAt: now - 2 * 3_600_000, agentVersion: '0.1.0' } },
    { pcId: 'laptop-new-11', lastSeenAt: null, status: null },
  );
  const requests: SeedRequest[] = [
    { id: 'req-hr-01', pcId: 'laptop-hr-01', user: 'vera', days: 5, maxDays: 14, reason: 'Customer visit in Lyon, no company network on site', requestedAt: now - 2 * 3_600_000 },
    { id: 'req-field-02', pcId: 'laptop-field-02', user: 'tom', days: 20, maxDays: 14, reason: 'Trade fair, two weeks', requestedAt: now - 26 * 3_600_000 },
  ];
  if (opts.hostile) {
    pcs.push({ pcId: HOSTILE_PC, lastSeenAt: now - 1000, status: { gate: 'online', takeoutUntil: null, users: [FORMULA_USER, HOSTILE_USER], lastBackupAt: now - DAY, agentVersion: '<b>9</b>' } });
    requests.push({ id: 'req-hostile', pcId: HOSTILE_PC, user: HOSTILE_USER, days: 3, maxDays: 7, reason: HOSTILE_REASON, requestedAt: now - 600_000 });
  }
  return { pcs, requests, bulk };
}
