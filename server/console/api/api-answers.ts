/**
 * What every route of the console's JSON API shares: the error a route
 * throws (answered as `{"error":{"code","message"}}` with its code's status,
 * ../error-status.ts), the JSON answer, and reading a field of a JSON body.
 */
import type { FastifyReply } from 'fastify';
import type { ConsoleApiErrorCode } from '../error-status.js';

export class ApiError extends Error {
  constructor(
    readonly code: ConsoleApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function json(reply: FastifyReply, status: number, body: unknown, headers: Record<string, string> = {}): FastifyReply {
  reply.code(status).type('application/json').header('cache-control', 'no-store');
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.send(JSON.stringify(body));
}

export function field(body: unknown, name: string): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('ERR_API_BODY', 'the body must be a JSON object');
  return (body as Record<string, unknown>)[name];
}
