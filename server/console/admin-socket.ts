/**
 * The local administration endpoint of a running `mydoc console serve`:
 * HTTP over a Unix socket in the data folder (`<dataDir>/run/admin.sock`,
 * mode 0600 in a 0700 folder), so only the console's own account can use it
 * and no admin secret is needed on disk. `mydoc console pc add|remove` go
 * through it, so a removal drops the PC's link at once and the running
 * console stays the one writer of its audit trail; when no console runs,
 * the commands do the same on the store directly (cli/console.ts).
 *
 *   POST   /pcs/<pcId>  {"actor"}  -> 200 AddedPc (the one-time token)
 *   DELETE /pcs/<pcId>  {"actor"}  -> 204
 * Errors: {"error":{"code","message"}} with the status of error-status.ts.
 *
 * Security considerations: the answer to POST holds the enrolment token;
 * it travels only on this socket, to the caller. The socket is made 0600
 * before it is used by anyone else (its folder is 0700).
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { codeOf, statusOf } from '../http/error-status.js';
import { consoleFolder } from './data-folder.js';
import { ADMIN_SOCKET_STATUS, STORE_STATUS } from './error-status.js';
import { ConsoleError } from './errors.js';
import type { AddedPc } from './pcs.js';

export interface AdminOperations {
  addPc(pcId: string, actor: string): Promise<AddedPc>;
  removePc(pcId: string, actor: string): Promise<void>;
}

type Logger = { error: (obj: object, msg: string) => void };

const MAX_BODY = 4096;
const PC_PATH = /^\/pcs\/([^/]+)$/;

export async function startConsoleAdminSocket(dataDir: string, ops: AdminOperations, logger: Logger): Promise<Server> {
  const { run, adminSocket: path } = consoleFolder(dataDir);
  await mkdir(run, { recursive: true, mode: 0o700 });
  await chmod(run, 0o700);
  await rm(path, { force: true });
  const server = createServer((req, res) => {
    const send = (status: number, body?: unknown) => {
      if (body === undefined) res.writeHead(status).end();
      else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    void (async () => {
      const match = PC_PATH.exec(new URL(req.url ?? '/', 'http://admin').pathname);
      if (!match || (req.method !== 'POST' && req.method !== 'DELETE')) return send(404, { error: { code: 'ERR_CONSOLE_REFUSED', message: 'no such admin endpoint' } });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY) return send(413, { error: { code: 'ERR_CONSOLE_REFUSED', message: 'request too large' } });
        chunks.push(chunk as Buffer);
      }
      let actor: unknown;
      try {
        actor = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { actor?: unknown }).actor;
      } catch {
        actor = undefined;
      }
      if (typeof actor !== 'string' || actor === '') return send(400, { error: { code: 'ERR_CONSOLE_REFUSED', message: 'the body must be {"actor": NAME}' } });
      let pcId: string;
      try {
        pcId = decodeURIComponent(match[1]!);
      } catch {
        return send(400, { error: { code: 'ERR_CONSOLE_PC_ID', message: 'the PC id in the path is not valid percent-encoding' } });
      }
      if (req.method === 'POST') return send(200, await ops.addPc(pcId, actor));
      await ops.removePc(pcId, actor);
      return send(204);
    })().catch((err: Error) => {
      const status = statusOf({ ...ADMIN_SOCKET_STATUS, ...STORE_STATUS }, err);
      if (status === undefined) logger.error({ code: codeOf(err), err: err.message }, 'admin socket: request failed');
      if (!res.headersSent) send(status ?? 500, { error: { code: codeOf(err) ?? 'ERR_INTERNAL', message: status === undefined ? 'internal error (see the console\'s log)' : err.message } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  await chmod(path, 0o600);
  return server;
}

/** An error the running console answered, with its code and message. */
class AnsweredError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * One call to the admin socket of the console running on `dataDir`:
 * `{ running: false }` when none runs there; an error it answers is thrown
 * with its code and message.
 */
export function consoleAdminCall<T>(dataDir: string, method: 'POST' | 'DELETE', path: string, body: unknown): Promise<{ running: false } | { running: true; answer: T | undefined }> {
  const socketPath = consoleFolder(dataDir).adminSocket;
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString('utf8')));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          return reject(new ConsoleError('ERR_CONSOLE_REFUSED', `the console answered ${res.statusCode} with something that is not JSON`));
        }
        if (res.statusCode === 200 || res.statusCode === 204) return resolve({ running: true, answer: parsed as T | undefined });
        const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
        const code = typeof error?.code === 'string' && error.code.startsWith('ERR_') ? error.code : 'ERR_CONSOLE_REFUSED';
        reject(new AnsweredError(code, typeof error?.message === 'string' ? error.message : `the console answered ${res.statusCode}`));
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve({ running: false });
      else reject(new ConsoleError('ERR_CONSOLE_UNREACHABLE', `cannot reach the running console at ${socketPath}: ${err.message}`));
    });
    req.end(data);
  });
}
