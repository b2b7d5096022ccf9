/**
 * Where errors become HTTP answers: a table from error codes to statuses
 * (each process keeps its statuses in one module, in sections by where they
 * are answered; the agent's is server/agent/error-status.ts), applied by the
 * error handler of a fastify context. Handlers throw coded errors, never
 * statuses.
 *
 * Security considerations: an error the table does not know is answered
 * `500 internal error` and logged; its message (which may hold server paths)
 * never reaches the client.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

/** HTTP status by error code. */
export type StatusTable = Readonly<Record<string, number>>;

/** The error's stable code, if it has one. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The status `table` gives the error's code; undefined when the table does not know it. */
export function statusOf(table: StatusTable, err: unknown): number | undefined {
  const code = codeOf(err);
  return code !== undefined && Object.hasOwn(table, code) ? table[code] : undefined;
}

/**
 * A refusal the HTTP layer decides from the request itself (its framing or size),
 * with the code the answer names: not an error of the code behind the route.
 */
export class RequestRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** What an error is answered with: `code` is set for an error the table (or the HTTP layer) knows. */
export interface ErrorAnswer {
  status: number;
  message: string;
  code?: string;
}

/** A plain-sentence answer (text/plain, the sentence and a newline), as the WebDAV share answers errors. */
export function plainAnswer(reply: FastifyReply, status: number, message: string, headers: Record<string, string> = {}): FastifyReply {
  const body = Buffer.from(`${message}\n`, 'utf8');
  reply.code(status);
  for (const [k, v] of Object.entries({ 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), ...headers })) reply.header(k, v);
  return reply.send(body);
}

/**
 * Installs the error handler of `context` (the routes registered in it):
 * a RequestRefused keeps its status, an error whose code `table` knows gets
 * that status, an error fastify raised with a 4xx/5xx `statusCode` keeps it;
 * anything else is 500 `internal error`, logged. `answer` writes the response
 * in the context's format.
 */
export function useErrorStatus(context: FastifyInstance, table: StatusTable, answer: (reply: FastifyReply, a: ErrorAnswer) => FastifyReply): void {
  context.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof RequestRefused) return answer(reply, { status: err.status, code: err.code, message: err.message });
    const known = statusOf(table, err);
    if (known !== undefined) return answer(reply, { status: known, code: codeOf(err)!, message: err.message });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return answer(reply, { status, message: status >= 500 ? 'internal error' : err.message });
  });
}
