/**
 * The console's forwarding core (server/console/dav/forward.ts) over a real
 * link: the console's link server (startLinkServer) and, on the agent's end,
 * a real TLS + HTTP/2 peer that dials it with a device certificate, is
 * admitted, and answers /link/dav streams as each test scripts it. Between
 * the client and the core, a real fastify app on a socket.
 *
 * What must hold: only the listed WebDAV headers go down (never the
 * client's Authorization or cookies), with a grant signed for the request
 * alone (fresh id, its method, 60 s, verifiable with the issuer's public
 * key); the query is cut from the link path; answers stream with
 * backpressure both ways (a paused client holds the agent back to a few
 * windows, a 64 MiB upload arrives intact); a client that goes away resets
 * the agent's stream; an agent that does not answer is 504, a broken stream
 * 502, an agent's JSON refusal is relayed as its status and sentence, and a
 * PC without a link is 503 at once with its last-seen time; an agent that
 * goes away mid-answer (its link closed as the agent's stop closes it)
 * ends a paused client's and a reading client's answers short at once.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { verifyGrant } from '../policy/grants/grant.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, parseIssuerPublicKey, type IssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { forwardToAgent, type ForwardDeps, type ForwardOutcome } from '../server/console/dav/forward.js';
import type { LinkHub } from '../server/console/link/hub.js';
import { startLinkServer } from '../server/console/link/server.js';
import { createTlsMaterial } from '../server/http/tls.js';
import { deviceCertificate } from '../server/link/device-identity.js';
import { GRANT_HEADER, LINK_ALPN } from '../server/link/protocol.js';
import { tempDir } from './helpers/keys.js';
import { agentIdentity, captureLogger, FakeRegistry, until } from './helpers/link-fakes.js';
import { freePort } from './helpers/server.js';

type DavScript = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

const LAST_SEEN = Date.parse('2026-12-01T10:00:00Z');
const MiB = 1024 * 1024;

describe('the forwarding core over a real link', { timeout: 120_000 }, () => {
  let cleanup: () => Promise<void>;
  let hub: LinkHub;
  let issuerPublic: IssuerPublicKey;
  let app: FastifyInstance;
  let base: string;
  let agentSession: http2.ServerHttp2Session | undefined;
  let agentSocket: tls.TLSSocket | undefined;
  let script: DavScript = (s) => s.respond({ ':status': 500 });
  const outcomes: ForwardOutcome[] = [];
  /** How long the caller's audit line takes (onOutcome). */
  let auditMs = 0;

  before(async () => {
    const tmp = await tempDir('mydoc-forward-');
    cleanup = tmp.cleanup;
    const material = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'console' });
    const issuer = await generateIssuerKeyPair('EdDSA');
    await writeFile(join(tmp.dir, 'issuer.pem'), issuer.privatePem, { mode: 0o600 });
    const issuerKey = await loadIssuerPrivateKey(join(tmp.dir, 'issuer.pem'), 'test issuer');
    issuerPublic = await parseIssuerPublicKey(issuer.publicPem, 'test issuer');
    const registry = new FakeRegistry();
    registry.tokens.set('pc-f', 'token-f');
    const linkPort = await freePort();
    hub = await startLinkServer({ host: '127.0.0.1', port: linkPort, tls: { cert: material.certPem, key: material.keyPem }, heartbeatSeconds: 30, consoleKey: issuer.publicPem, registry, logger: captureLogger().logger });

    // The agent's end: dials, is asked who it is, welcomed, keeps its events stream open, answers /link/dav as scripted.
    const id = await agentIdentity(tmp.dir, 'agent');
    const cert = await deviceCertificate(id.deviceKey, id.devicePublicPem, 'pc-f');
    const socket = tls.connect({ host: '127.0.0.1', port: linkPort, ca: material.caCertPem, key: id.deviceKey.export({ type: 'pkcs8', format: 'pem' }), cert, ALPNProtocols: [LINK_ALPN], minVersion: 'TLSv1.3' });
    agentSocket = socket;
    socket.once('secureConnect', () => {
      const session = http2.performServerHandshake(socket);
      agentSession = session;
      session.on('stream', (stream, headers) => {
        const path = headers[':path'] ?? '';
        if (path === '/link/identity') stream.respond({ ':status': 200, 'content-type': 'application/json' }), stream.end(JSON.stringify({ pcId: 'pc-f', agentVersion: 'test', enrolmentToken: 'token-f' }));
        else if (path === '/link/welcome') stream.resume().on('end', () => stream.respond({ ':status': 204 }, { endStream: true }));
        else if (path === '/link/events') stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
        else if (path.startsWith('/link/dav/')) {
          stream.on('error', () => undefined); // this end's own resets (a script closing with an error code)
          script(stream, headers);
        }
        else stream.respond({ ':status': 404 }, { endStream: true });
      });
    });
    await until(() => registry.online.has('pc-f'), 'the fake agent linked');

    const deps: ForwardDeps = {
      hub,
      store: { getPc: async (pcId) => (pcId === 'pc-gone' ? ({ pcId, lastSeenAt: LAST_SEEN } as never) : undefined) },
      issuerKey,
      clock: () => Date.now(),
      logger: captureLogger().logger as never,
      timeoutMs: 700,
      answerIdleMs: 600,
    };
    app = Fastify();
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => done(null, payload));
    app.addHttpMethod('PROPFIND', { hasBody: true });
    app.route({
      method: ['GET', 'HEAD', 'PUT', 'PROPFIND'],
      exposeHeadRoute: false,
      url: '/pcs/*',
      handler: async (req, reply) => {
        const pcId = req.headers['x-test-pc'] === 'gone' ? 'pc-gone' : 'pc-f';
        const grant = { actor: 'dana', kind: 'admin' as const, role: 'data', user: 'alice', access: 'read' as const, base: '/pcs/pc-f/alice', root: [], prefix: [] };
        await forwardToAgent(deps, { pcId, method: req.method, rawUrl: req.raw.url ?? '/', headers: req.headers, body: req.body as Readable | undefined, grant }, reply, { onOutcome: async (o) => {
          outcomes.push(o);
          if (auditMs > 0) await new Promise((r) => setTimeout(r, auditMs));
        } });
        return reply;
      },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });

  after(async () => {
    await app?.close();
    agentSession?.destroy();
    await hub?.close();
    await cleanup?.();
  });

  function request(method: string, path: string, headers: http.OutgoingHttpHeaders = {}, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; ms: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('sends only the WebDAV headers and a fresh grant for this request; the query is cut off', async () => {
    const seen: IncomingHttpHeaders[] = [];
    script = (stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': 207, 'content-type': 'application/xml; charset=utf-8', etag: '"x"' });
      stream.end('<multistatus/>');
    };
    const sent = { authorization: 'Basic ZGFuYTpzZWNyZXQ=', cookie: '__Host-s=abc', depth: '1', destination: 'https://console/pcs/x', range: 'bytes=0-1', 'x-custom': 'no', 'if-none-match': '"a"', 'content-type': 'application/xml' };
    const first = await request('PROPFIND', '/pcs/pc-f/alice/a%20b/?q=1', sent, Buffer.from('<propfind/>'));
    assert.equal(first.status, 207);
    assert.equal(first.body.toString(), '<multistatus/>');
    assert.equal(first.headers.etag, '"x"');
    await request('PROPFIND', '/pcs/pc-f/alice/', { depth: '0' });
    const [h1, h2] = seen;
    assert.equal(h1![':path'], '/link/dav/pcs/pc-f/alice/a%20b/');
    assert.equal(h1![':method'], 'PROPFIND');
    for (const name of ['authorization', 'cookie', 'x-custom']) assert.equal(h1![name], undefined, `${name} must not go down the link`);
    for (const name of ['depth', 'destination', 'range', 'if-none-match', 'content-type']) assert.equal(h1![name], sent[name as keyof typeof sent], name);
    const g1 = await verifyGrant(h1![GRANT_HEADER], { key: issuerPublic, pcId: 'pc-f', now: new Date() });
    const g2 = await verifyGrant(h2![GRANT_HEADER], { key: issuerPublic, pcId: 'pc-f', now: new Date() });
    assert.equal(g1.method, 'PROPFIND');
    assert.equal(g1.actor, 'dana');
    assert.equal(g1.expires - g1.issuedAt, 60);
    assert.notEqual(g1.id, g2.id, 'one grant, one request');
    assert.equal(outcomes.at(-2)?.requestId, g1.id, 'the outcome names the grant\'s id');
    await assert.rejects(verifyGrant(h1![GRANT_HEADER], { key: issuerPublic, pcId: 'pc-other', now: new Date() }));
  });

  it('HEAD keeps the agent\'s length without a body; an absolute-form target goes down as its path', async () => {
    const paths: string[] = [];
    script = (stream, headers) => {
      paths.push(headers[':path']!);
      stream.respond({ ':status': 200, 'content-length': '12345', 'content-type': 'application/octet-stream' }, { endStream: true });
    };
    const head = await request('HEAD', '/pcs/pc-f/alice/f.bin');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '12345');
    assert.equal(head.body.length, 0);
    const absolute = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: Number(new URL(base).port), method: 'HEAD', path: `${base}/pcs/pc-f/alice/abs.bin?x=1`, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(absolute, 200);
    assert.deepEqual(paths, ['/link/dav/pcs/pc-f/alice/f.bin', '/link/dav/pcs/pc-f/alice/abs.bin']);
  });

  it('keeps an answer the agent has already ended while the audit line is written', async () => {
    const body = randomBytes(200_000);
    script = (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(body.length) });
      stream.end(body);
    };
    auditMs = 300;
    try {
      const res = await request('GET', '/pcs/pc-f/alice/small.bin');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, body);
    } finally {
      auditMs = 0;
    }
  });

  it('a paused client holds the agent back to a few windows; the whole answer arrives intact', async () => {
    const total = 256 * MiB;
    const chunk = randomBytes(MiB);
    let written = 0;
    const hash = createHash('sha256');
    script = (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(total), 'content-type': 'application/octet-stream' });
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          hash.update(chunk);
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    };
    let read = 0;
    let maxAhead = 0;
    const got = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      http.get(`${base}/pcs/pc-f/alice/big.bin`, { agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-length'], String(total));
        res.on('data', (c: Buffer) => {
          read += c.length;
          got.update(c);
          maxAhead = Math.max(maxAhead, written - read);
          if (read >= 8 * MiB && read - c.length < 8 * MiB) {
            res.pause();
            setTimeout(() => {
              maxAhead = Math.max(maxAhead, written - read);
              res.resume();
            }, 1500);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(read, total);
    assert.equal(got.digest('hex'), hash.digest('hex'));
    assert.ok(maxAhead < 48 * MiB, `the agent got ${Math.round(maxAhead / MiB)} MiB ahead of a paused client`);
  });

  it('streams a 64 MiB upload up the link intact, for longer than the answer deadline while it progresses', async () => {
    const body = randomBytes(64 * MiB);
    let received = '';
    script = (stream) => {
      const h = createHash('sha256');
      let seen = 0;
      stream.on('data', (c: Buffer) => {
        h.update(c);
        // The agent reads slowly: the upload takes about 2 s, well over the 700 ms deadline.
        if (Math.floor((seen + c.length) / (4 * MiB)) > Math.floor(seen / (4 * MiB))) {
          stream.pause();
          setTimeout(() => stream.resume(), 120);
        }
        seen += c.length;
      });
      stream.on('end', () => {
        received = h.digest('hex');
        stream.respond({ ':status': 201 }, { endStream: true });
      });
    };
    const res = await request('PUT', '/pcs/pc-f/alice/up.bin', { 'content-length': body.length, 'content-type': 'application/octet-stream' }, body);
    assert.equal(res.status, 201);
    assert.ok(res.ms > 1000, `the upload took ${res.ms} ms`);
    assert.equal(received, createHash('sha256').update(body).digest('hex'));

    // An agent that stops reading the upload is a 504 after the deadline, not a hang.
    script = (stream) => {
      stream.once('data', () => stream.pause());
    };
    const stuck = await request('PUT', '/pcs/pc-f/alice/stuck.bin', { 'content-length': body.length, 'content-type': 'application/octet-stream' }, body).catch((err: Error) => ({ status: -1, ms: 0, body: Buffer.from(err.message), headers: {} }));
    assert.equal(stuck.status, 504, stuck.body.toString());
  });

  it('a client that goes away resets the agent\'s stream', async () => {
    let reset: Promise<number> | undefined;
    script = (stream) => {
      reset = new Promise((resolve) => stream.once('close', () => resolve(stream.rstCode)));
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(MiB);
      const pump = () => {
        while (!stream.destroyed && stream.write(chunk));
        if (!stream.destroyed) stream.once('drain', pump);
      };
      pump();
    };
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/pcs/pc-f/alice/endless`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    const code = await Promise.race([reset!, new Promise<string>((r) => setTimeout(() => r('not reset'), 5000))]);
    assert.notEqual(code, 'not reset', 'the agent\'s stream was not closed');
    assert.notEqual(code, http2.constants.NGHTTP2_NO_ERROR, 'closed with a reset, not a clean end');
  });

  it('no answer is 504 after the deadline, a broken stream 502, never a hang', async () => {
    script = () => undefined; // never answers
    const slow = await request('GET', '/pcs/pc-f/alice/x');
    assert.equal(slow.status, 504);
    assert.match(slow.body.toString(), /^PC pc-f did not answer within 1 s\n$/);
    assert.ok(slow.ms < 3000, `${slow.ms} ms`);
    assert.equal(outcomes.at(-1)?.code, 'ERR_LINK_TIMEOUT');
    script = (stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const broken = await request('GET', '/pcs/pc-f/alice/x');
    assert.equal(broken.status, 502);
    assert.match(broken.body.toString(), /the link to PC pc-f broke/);
  });

  it('ends an answer whose agent stops sending, but not one whose client is slow', async () => {
    script = (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(10 * MiB) });
      stream.write(Buffer.alloc(MiB)); // then nothing more
    };
    const started = Date.now();
    const cut = await new Promise<string>((resolve) => {
      http.get(`${base}/pcs/pc-f/alice/stuck.bin`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve('ended'));
        res.on('error', () => resolve('cut'));
        res.on('close', () => resolve(res.complete ? 'ended' : 'cut'));
      }).on('error', () => resolve('cut'));
    });
    assert.equal(cut, 'cut');
    assert.ok(Date.now() - started < 5000, `cut after ${Date.now() - started} ms`);

    const body = randomBytes(32 * MiB);
    script = (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(body.length) });
      stream.end(body);
    };
    const slow = await new Promise<Buffer>((resolve, reject) => {
      http.get(`${base}/pcs/pc-f/alice/slow.bin`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (chunks.length === 1) {
            res.pause();
            setTimeout(() => res.resume(), 2000); // longer than the idle limit
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(slow.length, body.length, 'a paused client is not cut off');
    assert.deepEqual(slow, body);
  });

  it('relays an agent\'s refusal as its status and sentence', async () => {
    script = (stream) => {
      stream.respond({ ':status': 403, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ error: { code: 'ERR_GRANT_EXPIRED', message: 'the grant has expired' } }));
    };
    const res = await request('GET', '/pcs/pc-f/alice/x');
    assert.equal(res.status, 403);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.body.toString(), 'the grant has expired\n');
    assert.equal(outcomes.at(-1)?.code, 'ERR_GRANT_EXPIRED');
  });

  it('a PC without a link is 503 at once, with when it was last seen', async () => {
    const res = await request('GET', '/pcs/pc-gone/alice/x', { 'x-test-pc': 'gone' });
    assert.equal(res.status, 503);
    assert.equal(res.body.toString(), 'PC pc-gone is not connected to the console; it was last seen at 2026-12-01 10:00 UTC\n');
    assert.ok(res.ms < 1000, `${res.ms} ms`);
  });

  // Last: it takes the fake agent's link down.
  it('an agent that goes away mid-answer ends a paused and a reading client\'s answers short at once', async () => {
    const total = 256 * MiB;
    let streams = 0;
    script = (stream) => {
      streams++;
      stream.respond({ ':status': 200, 'content-length': String(total), 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(MiB);
      const pump = () => {
        while (!stream.destroyed && stream.write(chunk));
        if (!stream.destroyed) stream.once('drain', pump);
      };
      pump();
    };
    let goneAt = 0;
    let gone: () => void = () => undefined;
    const agentGone = new Promise<void>((resolve) => (gone = resolve));
    const download = (paused: boolean) =>
      new Promise<{ bytes: number; ended: string; afterGoneMs: number }>((resolve) => {
        let bytes = 0;
        let held = false;
        const finish = (ended: string) => resolve({ bytes, ended, afterGoneMs: Date.now() - goneAt });
        const req = http.get(`${base}/pcs/pc-f/alice/${paused ? 'paused' : 'reading'}.bin`, { agent: false }, (res) => {
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            // The paused client stops after its first 4 MiB (the console's relay fills up behind it) until the agent is gone.
            if (paused && bytes >= 4 * MiB && !held) {
              held = true;
              res.pause();
              void agentGone.then(() => setTimeout(() => res.resume(), 300));
            }
          });
          res.on('end', () => finish(res.complete ? 'complete' : 'ended'));
          res.on('error', () => finish('cut'));
          res.on('close', () => finish(res.complete ? 'complete' : 'cut'));
        });
        req.on('error', () => finish('cut'));
        // A hang: cut here, so the test fails in time.
        void agentGone.then(() => setTimeout(() => {
          finish('still open');
          req.destroy();
        }, 5000));
      });
    const both = Promise.all([download(false), download(true)]);
    await until(() => streams === 2, 'both downloads reached the agent');
    await new Promise((r) => setTimeout(r, 500));
    // As the agent's ConsoleLink.stop: GOAWAY, then its socket closed (a clean FIN, no reset).
    goneAt = Date.now();
    agentSession?.close();
    agentSocket?.destroy();
    gone();
    const [reading, paused] = await both;
    for (const [name, o] of [['reading', reading], ['paused', paused]] as const) {
      assert.equal(o.ended, 'cut', `${name} client: ${o.ended} ${o.afterGoneMs} ms after the agent went away, with ${o.bytes} of ${total} bytes`);
      assert.ok(o.bytes < total, `${name}: the whole answer arrived`);
      assert.ok(o.afterGoneMs < 2000, `${name}: cut ${o.afterGoneMs} ms after the agent went away`);
    }
  });
});
