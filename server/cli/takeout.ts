/**
 * The administrator's take-out commands and the issuer key generator:
 * `mydoc keys issuer`, and `mydoc takeout list|approve|deny|revoke`, either
 * against the console (`--console`: it holds the issuer key, signs and sends
 * the key down its link to the PC) or, without a console, straight against
 * one agent (`--agent`, with the issuer key on the administrator's machine).
 *
 * Security considerations: the agent or console is reached over HTTPS only,
 * trusting `--ca` or else the system's CAs; no redirects are followed. The
 * administrator's password comes from standard input and is sent only as
 * Basic credentials to that server. The issuer private key is read locally
 * and never sent; K_to is handled in memory only. The issuer private key
 * file is created 0600 and never overwrites a file.
 */
import { createPublicKey } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { buildTakeoutKey } from '../../policy/takeout/issuer/approve.js';
import type { RequestDetail } from '../../policy/takeout/request.js';
import { ISSUER_ALGS, generateIssuerKeyPair, loadIssuerPrivateKey, type IssuerAlg } from '../../policy/takeout/issuer-keys.js';
import { command, type Io } from './command.js';
import { CliError } from './errors.js';
import { passwordStdinOption, readPassword } from './inputs.js';

const TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 1024 * 1024;
const REQUEST_STATES = ['pending', 'approved', 'denied', 'expired', 'revoked'] as const;

/** Where a take-out command goes: an agent (`--agent`) or the console (`--console`). */
export interface Connection {
  kind: 'agent' | 'console';
  base: URL;
  caPem: string | undefined;
  user: string;
  password: string;
}

/** Checks the connection options shared by the take-out commands (exactly one of --agent, --console), reads the CA file and the password. */
async function connection(values: { agent?: string | undefined; console?: string | undefined; ca: string | undefined; user: string }, password: () => Promise<string>, agentToo: boolean): Promise<Connection> {
  if (!agentToo && values.console === undefined) throw new CliError('this needs --console URL (the console)', 2);
  if ((values.agent === undefined) === (values.console === undefined)) throw new CliError('give either --console URL (the console) or --agent URL (one PC without a console)', 2);
  const kind = values.console !== undefined ? 'console' : 'agent';
  const address = (values.console ?? values.agent)!;
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new CliError(`--${kind} must be an https:// URL (got "${address}")`, 2);
  }
  if (url.protocol !== 'https:') throw new CliError(`--${kind} must be an https:// URL (got "${address}")`, 2);
  let caPem: string | undefined;
  if (values.ca !== undefined) {
    const ca = values.ca;
    caPem = await readFile(ca, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read the CA file ${ca}: ${err.code ?? err.message}`);
    });
  }
  return { kind, base: url, caPem, user: values.user, password: await password() };
}

/** One JSON call to the agent or console; a non-2xx answer becomes a CliError with its message. */
function call<T>(conn: Connection, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const url = new URL(path.replace(/^\//, ''), conn.base.href.endsWith('/') ? conn.base : new URL(`${conn.base.href}/`));
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const auth = `Basic ${Buffer.from(`${conn.user}:${conn.password}`, 'utf8').toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: conn.caPem,
        timeout: TIMEOUT_MS,
        headers: { authorization: auth, accept: 'application/json', ...(payload && { 'content-type': 'application/json', 'content-length': payload.length }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('the answer is too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300 && json !== undefined) return resolve(json as T);
          const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
          const why = error?.message ? `${error.message}${error.code ? ` (${error.code})` : ''}` : text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
          reject(new CliError(`the ${conn.kind} answered ${status}: ${why || 'no details'}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => reject(err instanceof CliError ? err : new CliError(`cannot reach the ${conn.kind} ${conn.base.origin}: ${err.message}`)));
    req.end(payload);
  });
}

/** A request row as the console's API answers it. */
interface ConsoleRequest {
  id: string;
  pcId: string;
  user: string;
  days: number;
  reason: string;
  requestedAt: number;
  state: string;
  decidedBy: string | null;
  note: string | null;
  jti: string | null;
  until: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** A value from the server as one line of the terminal: control characters shown as `?`. */
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** mydoc takeout list (console): one line per request. */
export async function list(conn: Connection, filter: { state: string | undefined; pc: string | undefined }): Promise<string> {
  const query = new URLSearchParams({ ...(filter.state && { state: filter.state }), ...(filter.pc && { pcId: filter.pc }), limit: '1000' });
  const { requests } = await call<{ requests: ConsoleRequest[] }>(conn, 'GET', `/api/takeout/requests?${query}`);
  if (requests.length === 0) return 'no take-out requests\n';
  return requests
    .map((r) => {
      const decided = r.state === 'pending' ? `asked ${iso(r.requestedAt)}` : `${r.state}${r.decidedBy ? ` by ${r.decidedBy}` : ''}${r.until ? ` until ${iso(r.until)}` : ''}${r.state === 'denied' && r.note ? `: ${r.note}` : ''}`;
      return printable(`${r.id}  ${r.pcId}  ${r.user}  ${r.days} day(s)  ${decided}  reason: ${r.reason}`) + '\n';
    })
    .join('');
}

/** mydoc takeout approve: returns the line to print. */
export async function approve(conn: Connection, opts: { id: string; days: number; issuerKeyFile: string | undefined }): Promise<string> {
  const path = `/api/takeout/requests/${encodeURIComponent(opts.id)}`;
  if (conn.kind === 'console') {
    const r = await call<ConsoleRequest>(conn, 'POST', `${path}/approval`, { days: opts.days });
    return printable(`approved: take-out key ${r.jti} for "${r.user}" on PC "${r.pcId}", valid until ${iso(r.until!)}`) + '\n';
  }
  if (opts.issuerKeyFile === undefined) throw new CliError('--agent needs --issuer-key FILE (the issuer private key signs the take-out key)', 2);
  const issuer = await loadIssuerPrivateKey(opts.issuerKeyFile, '--issuer-key');
  const request = await call<RequestDetail>(conn, 'GET', path);
  const device = await call<{ pcId: string; publicKeyPem: string }>(conn, 'GET', '/api/device-key');
  if (device.pcId !== request.pcId) throw new CliError(`the agent's device key is for PC "${device.pcId}", but the request is for "${request.pcId}"`);
  const devicePublicKey = createPublicKey(device.publicKeyPem);
  const { token, jti, exp } = await buildTakeoutKey({ issuer, admin: conn.user, request, devicePublicKey, days: opts.days, now: Date.now() });
  await call(conn, 'POST', `${path}/key`, { token });
  return `approved: take-out key ${jti} for "${request.user}" on PC "${request.pcId}", valid until ${new Date(exp * 1000).toISOString()}\n`;
}

/** mydoc takeout deny (console): returns the line to print. */
export async function deny(conn: Connection, opts: { id: string; note: string }): Promise<string> {
  const r = await call<ConsoleRequest>(conn, 'POST', `/api/takeout/requests/${encodeURIComponent(opts.id)}/denial`, { note: opts.note });
  return printable(`denied: take-out request ${r.id} of "${r.user}" on PC "${r.pcId}"; the user sees your note`) + '\n';
}

/** mydoc takeout revoke: returns the line to print. */
export async function revoke(conn: Connection, jti: string): Promise<string> {
  if (conn.kind === 'console') {
    const r = await call<ConsoleRequest>(conn, 'POST', '/api/takeout/revocations', { jti });
    return printable(`revoked ${jti} (take-out of "${r.user}" on PC "${r.pcId}"); the PC is told now or when it next connects\n`);
  }
  const answer = await call<{ user?: string }>(conn, 'POST', '/api/takeout/revocations', { jti });
  return `revoked ${jti}${answer.user ? ` (take-out of "${answer.user}")` : ' (not on that PC: refused if it ever comes)'}; its slot T is destroyed at the agent's next online check\n`;
}

/** mydoc keys issuer: writes the pair; returns the lines to print. */
async function writeIssuerKeys(opts: { out: string; publicOut: string; alg: IssuerAlg }): Promise<string> {
  const pair = await generateIssuerKeyPair(opts.alg);
  await mkdir(dirname(opts.out), { recursive: true, mode: 0o700 });
  let fh;
  try {
    fh = await open(opts.out, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${opts.out} already exists; refusing to overwrite it`);
    throw new CliError(`cannot write ${opts.out}: ${(err as Error).message}`);
  }
  try {
    await fh.writeFile(pair.privatePem);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await writeFileAtomic(opts.publicOut, pair.publicPem, 0o644, 'create').catch(async (err: NodeJS.ErrnoException) => {
    await rm(opts.out, { force: true });
    throw new CliError(err.code === 'EEXIST' ? `${opts.publicOut} already exists; refusing to overwrite it` : `cannot write ${opts.publicOut}: ${err.message}`);
  });
  return (
    `issuer key pair (${opts.alg}), kid ${pair.kid}\n` +
    `  private key: ${opts.out} (keep it off the PCs: it approves take-out periods)\n` +
    `  public key:  ${opts.publicOut} (list it in each agent's takeout.issuerPublicKeys)\n`
  );
}

/** The options of the commands that call the console or an agent. */
const consoleOptions = {
  console: { type: 'string', value: 'URL', description: "the console's address, e.g. https://console.corp.example:9443/" },
  user: { type: 'string', value: 'ADMIN', required: true, description: 'an administrator of the company directory' },
  'password-stdin': passwordStdinOption,
  ca: { type: 'path', description: "the console's (or agent's) CA certificate (default: the system's CAs)" },
} as const;
const agentOption = { agent: { type: 'string', value: 'URL', description: "without a console: the agent's address, e.g. https://pc-42.corp.example:8443/" } } as const;

const connect = (values: { agent?: string | undefined; console?: string | undefined; ca: string | undefined; user: string }, io: Io, agentToo = false) => connection(values, () => readPassword(io), agentToo);

export const takeoutCommands = [
  command({
    name: 'keys issuer',
    options: {
      out: { type: 'path', required: true, description: 'the private key file (0600, never overwritten)' },
      'public-out': { type: 'path', required: true, description: 'the public key file' },
      alg: { type: 'string', choices: ISSUER_ALGS, default: 'ES256', description: 'the signature algorithm' },
    },
    summary:
      "Generate a take-out issuer key pair. The private file approves take-out periods: keep it off the PCs. List the public file in each agent's takeout.issuerPublicKeys.",
    async run({ values }, io) {
      io.stdout(await writeIssuerKeys({ out: values.out, publicOut: values['public-out'], alg: values.alg }));
      return 0;
    },
  }),
  command({
    name: 'takeout list',
    options: {
      state: { type: 'string', choices: REQUEST_STATES, description: 'only requests in this state (default: all)' },
      pc: { type: 'string', value: 'PCID', description: 'only requests of this PC' },
      ...consoleOptions,
    },
    summary: "List the take-out requests the console holds (needs the viewer or approver role): id, PC, user, days, state, reason.",
    async run({ values }, io) {
      io.stdout(await list(await connect(values, io), { state: values.state, pc: values.pc }));
      return 0;
    },
  }),
  command({
    name: 'takeout approve',
    options: {
      id: { type: 'string', value: 'ID', required: true, dashValue: true, description: 'the pending take-out request' },
      days: { type: 'number', required: true, min: 1, integer: true, description: "the take-out period in days (at most the PC's takeout.maxDays)" },
      ...consoleOptions,
      ...agentOption,
      'issuer-key': { type: 'path', description: 'with --agent: the issuer private key', with: 'agent' },
    },
    summary:
      "Approve the pending take-out request ID for N days. With --console, the console signs the key and sends it to the PC (which must be online). With --agent (no console), fetch the request from the agent, sign the key with the issuer private key here, and install it there.",
    async run({ values }, io) {
      io.stdout(await approve(await connect(values, io, true), { id: values.id, days: values.days, issuerKeyFile: values['issuer-key'] }));
      return 0;
    },
  }),
  command({
    name: 'takeout deny',
    options: {
      id: { type: 'string', value: 'ID', required: true, dashValue: true, description: 'the pending take-out request' },
      note: { type: 'string', value: 'TEXT', required: true, description: 'why (the user reads it on their page)' },
      ...consoleOptions,
    },
    summary: 'Deny the pending take-out request ID with a note; the PC is told now or when it next connects, and the user sees the note.',
    async run({ values }, io) {
      io.stdout(await deny(await connect(values, io), { id: values.id, note: values.note }));
      return 0;
    },
  }),
  command({
    name: 'takeout revoke',
    options: {
      jti: { type: 'string', value: 'JTI', required: true, dashValue: true, description: 'the take-out key to revoke' },
      ...consoleOptions,
      ...agentOption,
    },
    summary: "Revoke a take-out key: refused at once on the PC (with --console, as soon as it is connected); its slot T is destroyed at the agent's next online check.",
    async run({ values }, io) {
      io.stdout(await revoke(await connect(values, io, true), values.jti));
      return 0;
    },
  }),
];
