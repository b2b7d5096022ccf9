/**
 * A PC's status as its agent reports it on the link and the console stores it.
 */

export type GateState = 'online' | 'takeout' | 'locked';

/** What an agent reports about itself on its link (the heartbeat's body). */
export interface PcStatus {
  gate: GateState;
  /** Epoch ms when the latest valid take-out key ends, or null. */
  takeoutUntil: number | null;
  /** The PC's users (names as the directory gives them). */
  users: string[];
  /** Epoch ms of the last complete backup, or null when none. */
  lastBackupAt: number | null;
  agentVersion: string;
}
