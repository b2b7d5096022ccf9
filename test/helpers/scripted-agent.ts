/**
 * Test helper: the agent's end of a console link, scripted. It dials a real
 * console's link port over TLS 1.3 with a device certificate (trusting only
 * the console's CA), answers the identity request with its enrolment token,
 * takes the welcome (and the console key in it), reports a status with its
 * users every second, and hands every /link/dav stream to the test's
 * script. Grants are verified with the welcomed console key, so a test sees
 * what the console signed; the WebDAV answers themselves are the script's.
 *
 * For tests of the console's side only (its routes, pages, refusals); the
 * real agent's side is tested with `mydoc serve` (console-fleet.ts).
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import tls from 'node:tls';
import { verifyGrant, type Grant } from '../../policy/grants/grant.js';
import { parseIssuerPublicKey } from '../../policy/takeout/issuer-keys.js';
import { deviceCertificate } from '../../server/link/device-identity.js';
import { GRANT_HEADER, LINK_ALPN, LINK_PATHS, type Welcome } from '../../server/link/protocol.js';
import { agentIdentity } from './link-fakes.js';

export type DavScript = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, grant: Grant) => void;

export interface ScriptedAgent {
  pcId: string;
  /** Resolves with the console's welcome. */
  welcomed: Promise<Welcome>;
  /** Every grant the console sent, verified, in order. */
  grants: Grant[];
  /** Answers each /link/dav stream (default: 500). */
  dav: DavScript;
  close(): void;
}

export async function dialScriptedAgent(opts: { host: string; port: number; caPem: string; pcId: string; token: string; users: string[]; dir: string }): Promise<ScriptedAgent> {
  const id = await agentIdentity(opts.dir, opts.pcId);
  const cert = await deviceCertificate(id.deviceKey, id.devicePublicPem, opts.pcId);
  let session: ServerHttp2Session | undefined;
  let timer: NodeJS.Timeout | undefined;
  let welcome!: (w: Welcome) => void;
  const agent: ScriptedAgent = {
    pcId: opts.pcId,
    welcomed: new Promise((resolve) => (welcome = resolve)),
    grants: [],
    dav: (stream) => stream.respond({ ':status': 500 }, { endStream: true }),
    close() {
      clearInterval(timer);
      session?.destroy();
      socket.destroy();
    },
  };
  const socket = tls.connect({ host: opts.host, port: opts.port, ca: opts.caPem, key: id.deviceKey.export({ type: 'pkcs8', format: 'pem' }), cert, ALPNProtocols: [LINK_ALPN], minVersion: 'TLSv1.3' });
  socket.on('error', () => undefined);
  socket.once('secureConnect', () => {
    session = http2.performServerHandshake(socket);
    session.on('error', () => undefined);
    session.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const path = headers[':path'] ?? '';
      const json = (status: number, body: unknown) => {
        stream.respond({ ':status': status, 'content-type': 'application/json' });
        stream.end(JSON.stringify(body));
      };
      if (path === LINK_PATHS.identity) return json(200, { pcId: opts.pcId, agentVersion: 'scripted', enrolmentToken: opts.token });
      if (path === LINK_PATHS.welcome) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          welcome(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Welcome);
          stream.respond({ ':status': 204 }, { endStream: true });
        });
        return;
      }
      if (path === LINK_PATHS.events) {
        stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
        const status = () => stream.write(`${JSON.stringify({ type: 'status', status: { gate: 'online', takeoutUntil: null, users: opts.users, lastBackupAt: null, agentVersion: 'scripted' } })}\n`);
        status();
        timer = setInterval(status, 1000);
        return;
      }
      if (path.startsWith(`${LINK_PATHS.dav}/`)) {
        void agent.welcomed.then(async (w) => {
          try {
            const grant = await verifyGrant(headers[GRANT_HEADER], { key: await parseIssuerPublicKey(w.consoleKey, 'the console key'), pcId: opts.pcId, now: new Date() });
            agent.grants.push(grant);
            agent.dav(stream, headers, grant);
          } catch (err) {
            json(403, { error: { code: (err as { code?: string }).code ?? 'ERR_GRANT', message: (err as Error).message } });
          }
        });
        return;
      }
      json(404, { error: { code: 'ERR_LINK_PATH', message: 'no such link path' } });
    });
  });
  return agent;
}
