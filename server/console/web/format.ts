/**
 * How the page and the CSV export show a PC's fields: times in UTC, ages,
 * the gate state, online or not. One place, so both say the same.
 */
import type { PcRow } from '../store/store.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `2026-12-02 16:57 UTC`, or the dash for none. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** How long ago (or, for a future time, how long until), rounded: `45 s`, `12 min`, `5 h`, `3 d`. */
export function formatAge(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < MINUTE) return `${Math.round(abs / 1000)} s`;
  if (abs < HOUR) return `${Math.floor(abs / MINUTE)} min`;
  if (abs < DAY) return `${Math.floor(abs / HOUR)} h`;
  return `${Math.floor(abs / DAY)} d`;
}

/** Whole days since `ms` (for the CSV). */
export function daysSince(ms: number, now: number): number {
  return Math.floor((now - ms) / DAY);
}

export function isOnline(pc: PcRow, onlineSince: number, connected: boolean): boolean {
  return pc.removedAt === null && (connected || (pc.lastSeenAt !== null && pc.lastSeenAt >= onlineSince));
}

/** The gate state in words: `online`, `take-out until …`, `locked`; or why there is none. */
export function gateText(pc: PcRow): string {
  if (pc.removedAt !== null) return 'removed';
  if (pc.status === null) return pc.enrolledAt === null ? 'not enrolled' : 'no status yet';
  if (pc.status.gate === 'takeout') return `take-out until ${formatTime(pc.status.takeoutUntil)}`;
  return pc.status.gate;
}
