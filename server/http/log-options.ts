/**
 * How a service (agent or console) logs, as its command line chose it
 * (server/cli/service-log.ts): pino's level and, on a terminal, the stream
 * of readable lines that replaces the JSON lines on standard output.
 */
import type { DestinationStream } from 'pino';

export interface LogOptions {
  logLevel?: string;
  logStream?: DestinationStream;
}

/** Only the options that are set (for options objects with exact optional properties). */
export function pickLogOptions(o: LogOptions): LogOptions {
  return { ...(o.logLevel ? { logLevel: o.logLevel } : {}), ...(o.logStream ? { logStream: o.logStream } : {}) };
}

/** Fastify's `logger` fields for these options, before each service's redactions and serializers. */
export function pinoOptions(o: LogOptions): { level: string; stream?: DestinationStream } {
  return { level: o.logLevel ?? 'info', ...(o.logStream ? { stream: o.logStream } : {}) };
}
