/**
 * The console's audit trail: the same hash-chained log as the agent's
 * (policy/audit/log.ts), in the console's data folder, verified by
 * `mydoc console audit verify`. The running console is its one writer;
 * commands run while it is down write to it directly (admin-socket.ts
 * decides which). The console records logins, enrolments (refused ones too,
 * with the reason), removals, approvals, denials and revocations; each part
 * appends its own events through the one `AuditLog` compose.ts opens.
 */
import { userInfo } from 'node:os';
import { AuditLog } from '../../policy/audit/log.js';
import type { Clock } from '../../shares/clock.js';
import { consoleFolder } from './data-folder.js';

export function openConsoleAudit(dataDir: string, clock: Clock): Promise<AuditLog> {
  return AuditLog.open(consoleFolder(dataDir).auditLog, { now: clock });
}

/** The actor of a command typed on the console's machine: its local account. */
export function localActor(): string {
  return `local:${userInfo().username}`;
}
