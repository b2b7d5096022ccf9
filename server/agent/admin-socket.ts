/**
 * The local administration endpoint of a running `mydoc serve`: HTTP over a
 * Unix socket in the data folder (`<dataDir>/run/admin.sock`, shares/data-folder.ts; mode 0600), so
 * only the service's own account (root on the service VM) can use it and no
 * admin secret is needed on disk. It lists and clears WebDAV locks, runs
 * backups, stops the service, and records the audit events of CLI commands
 * (the service is the audit log's one writer while it runs).
 */
import { createServer, request, type Server } from 'node:http';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { AuditLog, AuditLogError, type AuditEvent } from '../../policy/audit/log.js';
import { dataFolder } from '../../shares/data-folder.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import type { SessionLocks } from './session-locks.js';
import { AgentError } from './errors.js';
import type { BackupService } from './backup-service.js';
import { systemClock, type Clock } from '../../shares/clock.js';

export interface LockInfo {
  user: string;
  token: string;
  root: string;
  scope: string;
  depth: string;
  owner: string;
  expiresInSeconds: number;
}

const ownerText = (xml: string): string => xml.replace(/<[^>]*>/g, '').trim();

/**
 * `onStop`: asked by POST /stop (`mydoc stop`, the systemd ExecStop) after
 * the shutdown backup has been reported; the service then closes.
 */
export async function startAdminSocket(dataDir: string, sessionLocks: SessionLocks, backups: BackupService, audit: AuditLog, onStop: () => void, now: Clock = systemClock): Promise<Server> {
  const { run, adminSocket: path } = dataFolder(dataDir);
  await mkdir(run, { recursive: true, mode: 0o700 });
  await rm(path, { force: true });
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://admin');
      if ((url.pathname === '/backup' || url.pathname === '/stop') && req.method === 'POST') {
        // Streams progress as JSON lines, then {"summary"} or {"error"}.
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const deadline = url.searchParams.get('deadline');
        const line = (value: unknown) => res.write(JSON.stringify(value) + '\n');
        const onProgress = (progress: unknown) => line({ progress });
        const run = url.pathname === '/stop' ? backups.runAtShutdown(onProgress) : backups.run({ ...(deadline ? { deadlineSeconds: Number(deadline) } : {}), onProgress });
        await run.then((summary) => line({ summary }), (err: Error) => line({ error: { code: (err as { code?: string }).code ?? 'ERR_INTERNAL', message: err.message } }));
        res.end();
        if (url.pathname === '/stop') onStop();
        return;
      }
      if (url.pathname === '/audit' && req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        let event: AuditEvent;
        try {
          event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AuditEvent;
          await audit.append(event);
        } catch (err) {
          const bad = err instanceof SyntaxError || (err instanceof AuditLogError && err.code === 'ERR_AUDIT_EVENT');
          res.writeHead(bad ? 400 : 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: bad ? (err as Error).message : 'the audit log could not be written' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      const all = sessionLocks.all();
      const user = url.searchParams.get('user');
      const selected = all.filter((s) => user === null || s.user === normalizeUserName(user));
      if (url.pathname === '/locks' && req.method === 'GET') {
        const locks: LockInfo[] = selected.flatMap((s) =>
          s.locks.list().map((l) => ({
            user: s.user,
            token: l.token,
            root: l.rootHref,
            scope: l.scope,
            depth: String(l.depth),
            owner: ownerText(l.ownerXml),
            expiresInSeconds: Math.max(0, Math.round((l.expiresAt - now()) / 1000)),
          })),
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ locks }));
      } else if (url.pathname === '/locks' && req.method === 'DELETE') {
        const token = url.searchParams.get('token') ?? undefined;
        const cleared = selected.reduce((n, s) => n + s.locks.clear(token), 0);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cleared }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no such admin endpoint' }));
      }
    })().catch(() => res.writeHead(500).end(JSON.stringify({ error: 'internal error' })));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  await chmod(path, 0o600);
  return server;
}

/**
 * A streaming call (JSON lines) to the admin socket: `onLine` gets each
 * line. Resolves false without calling it when no service is running.
 */
export function adminStream(dataDir: string, method: 'POST', path: string, onLine: (value: unknown) => void): Promise<boolean> {
  const socketPath = dataFolder(dataDir).adminSocket;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let pending = '';
      res.on('data', (d: Buffer) => {
        pending += d.toString('utf8');
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          onLine(JSON.parse(pending.slice(0, nl)));
          pending = pending.slice(nl + 1);
        }
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(true) : reject(new AgentError('ERR_ADMIN_REFUSED', `the service answered ${res.statusCode}`))));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? resolve(false) : reject(new AgentError('ERR_ADMIN_UNREACHABLE', `cannot reach the service: ${err.message}`))));
    req.end();
  });
}

/** One call to the admin socket of the service running on `dataDir`. */
export function adminCall<T>(dataDir: string, method: 'GET' | 'DELETE', path: string): Promise<T> {
  const socketPath = dataFolder(dataDir).adminSocket;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new AgentError('ERR_ADMIN_REFUSED', `the service answered ${res.statusCode}: ${body}`));
        else resolve(JSON.parse(body) as T);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new AgentError('ERR_ADMIN_NOT_RUNNING', `the service is not running (no admin socket at ${socketPath})`)
          : new AgentError('ERR_ADMIN_UNREACHABLE', `cannot reach the service: ${err.message}`),
      ),
    );
    req.end();
  });
}

/**
 * Records the audit event of a CLI command: through the running service
 * (the log's one writer), or, when no service runs on `dataDir`, in the log
 * directly.
 */
export async function recordAuditEvent(dataDir: string, event: AuditEvent): Promise<void> {
  const socketPath = dataFolder(dataDir).adminSocket;
  const body = Buffer.from(JSON.stringify(event));
  const viaService = await new Promise<boolean>((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: '/audit', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      let answer = '';
      res.on('data', (d: Buffer) => (answer += d.toString('utf8')));
      res.on('end', () => (res.statusCode === 200 ? resolve(true) : reject(new AgentError('ERR_ADMIN_REFUSED', `the service did not record the audit event (${res.statusCode}: ${answer})`))));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? resolve(false) : reject(new AgentError('ERR_ADMIN_UNREACHABLE', `cannot reach the service: ${err.message}`))));
    req.end(body);
  });
  if (viaService) return;
  const log = await AuditLog.open(dataFolder(dataDir).auditLog);
  try {
    await log.append(event);
  } finally {
    await log.close();
  }
}
