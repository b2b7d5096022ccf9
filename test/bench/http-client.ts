/**
 * The HTTP clients of the WebDAV benchmarks; each figure uses one client for
 * the candidate and its baselines alike:
 * - curl (a separate process, so that it never competes with an in-process
 *   server for the event loop) for the 1 GiB transfers;
 * - a small Node https client (keep-alive agent, the share's CA, Basic auth)
 *   for PROPFIND timings and for streaming 4 GiB through a server running as
 *   a child process.
 */
import { spawn } from 'node:child_process';
import https from 'node:https';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export interface Target {
  /** `https://127.0.0.1:PORT` (no trailing slash). */
  base: string;
  caFile: string;
  caPem: string;
  user: string;
  password: string;
  /** Content-Type of PUT bodies; default application/octet-stream. */
  contentType?: string;
}

export interface CurlResult {
  status: number;
  bytes: number;
  seconds: number;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-16 * 1024)));
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function curlBase(t: Target): string[] {
  // --http1.1: the share speaks HTTP/1.1 only; no 100-continue round trip for either server.
  return ['-s', '-S', '--http1.1', '--cacert', t.caFile, '-u', `${t.user}:${t.password}`, '-o', '/dev/null', '-H', 'Expect:'];
}

function parseCurl(out: string, what: string, stderr: string): CurlResult {
  const m = /^(\d{3}) (\d+) ([\d.]+)$/.exec(out.trim());
  if (!m) throw new Error(`curl ${what}: unexpected output ${JSON.stringify(out)} ${stderr.trim()}`);
  return { status: Number(m[1]), bytes: Number(m[2]), seconds: Number(m[3]) };
}

/** GET `path` with curl, discarding the body; seconds is curl's time_total (connect, TLS and transfer). */
export async function curlGet(t: Target, path: string, expectBytes: number): Promise<CurlResult> {
  const res = await run('curl', [...curlBase(t), '-w', '%{http_code} %{size_download} %{time_total}', t.base + path]);
  const r = parseCurl(res.stdout, `GET ${path}`, res.stderr);
  if (res.code !== 0 || r.status !== 200 || r.bytes !== expectBytes) {
    throw new Error(`curl GET ${t.base}${path}: exit ${res.code}, status ${r.status}, ${r.bytes} bytes (expected 200 and ${expectBytes}) ${res.stderr.trim()}`);
  }
  return r;
}

/** PUT the file `file` to `path` with curl (Content-Length, no Expect); seconds is curl's time_total (until the response). */
export async function curlPut(t: Target, path: string, file: string, expectBytes: number): Promise<CurlResult> {
  const res = await run('curl', [
    ...curlBase(t),
    '-T',
    file,
    '-H',
    `Content-Type: ${t.contentType ?? 'application/octet-stream'}`,
    '-w',
    '%{http_code} %{size_upload} %{time_total}',
    t.base + path,
  ]);
  const r = parseCurl(res.stdout, `PUT ${path}`, res.stderr);
  if (res.code !== 0 || (r.status !== 201 && r.status !== 204) || r.bytes !== expectBytes) {
    throw new Error(`curl PUT ${t.base}${path}: exit ${res.code}, status ${r.status}, ${r.bytes} bytes (expected 201/204 and ${expectBytes}) ${res.stderr.trim()}`);
  }
  return r;
}

/** The TLS version and cipher curl negotiates with the server (for the record: both sides should match). */
export async function curlTlsInfo(t: Target, path = '/'): Promise<string> {
  const res = await run('curl', ['-s', '-v', '--http1.1', '--cacert', t.caFile, '-u', `${t.user}:${t.password}`, '-o', '/dev/null', '-X', 'OPTIONS', t.base + path]);
  const m = /SSL connection using (.+)/.exec(res.stderr);
  return m ? m[1]!.trim() : 'unknown';
}

export interface NodeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body when `keepBody`, else empty. */
  body: Buffer;
  bytes: number;
  /** From sending the request to the last byte of the response. */
  seconds: number;
}

export interface RequestOptions {
  headers?: OutgoingHttpHeaders;
  /** A whole body, or a stream of pieces (then `contentLength` is required). */
  body?: Buffer | string | AsyncIterable<Buffer>;
  contentLength?: number;
  keepBody?: boolean;
  /** Sees every piece of the response body. */
  onData?: (chunk: Buffer) => void;
}

/** A keep-alive HTTPS client trusting only the given CA, with Basic auth. */
export class NodeClient {
  readonly agent: https.Agent;
  private readonly auth: string;

  constructor(readonly target: Target) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: target.caPem });
    this.auth = `Basic ${Buffer.from(`${target.user}:${target.password}`, 'utf8').toString('base64')}`;
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<NodeResponse> {
    const headers: OutgoingHttpHeaders = { authorization: this.auth, ...opts.headers };
    const whole = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : Buffer.isBuffer(opts.body) ? opts.body : undefined;
    if (whole) headers['content-length'] = whole.length;
    else if (opts.body) {
      if (opts.contentLength === undefined) throw new Error('a streamed body needs contentLength');
      headers['content-length'] = opts.contentLength;
    }
    const start = process.hrtime.bigint();
    return new Promise<NodeResponse>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: Number(new URL(this.target.base).port), method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (opts.keepBody) chunks.push(c);
          opts.onData?.(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: opts.keepBody ? Buffer.concat(chunks, bytes) : Buffer.alloc(0),
            bytes,
            seconds: Number(process.hrtime.bigint() - start) / 1e9,
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      if (whole || !opts.body) {
        req.end(whole);
        return;
      }
      const source = opts.body as AsyncIterable<Buffer>;
      void (async () => {
        try {
          for await (const piece of source) {
            if (!req.write(piece)) {
              await new Promise<void>((r) => {
                const done = () => {
                  req.off('drain', done);
                  req.off('close', done);
                  r();
                };
                req.on('drain', done);
                req.on('close', done);
              });
            }
            if (req.destroyed) return;
          }
          req.end();
        } catch (err) {
          req.destroy(err as Error);
        }
      })();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
