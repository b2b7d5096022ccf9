/**
 * The administrator's take-out commands, run on the administrator's
 * machine (console or PC), and the issuer key generator: `mydoc keys
 * issuer`, `mydoc takeout approve` and `mydoc takeout revoke`.
 *
 * Security considerations: the agent is reached over HTTPS only, trusting
 * `--ca` (the agent's CA) or else the system's CAs; no redirects are
 * followed. The administrator's password comes from standard input and is
 * sent only as Basic credentials to that agent. The issuer private key is
 * read locally and never sent; K_to is handled in memory only. The issuer
 * private key file is created 0600 and never overwrites a file.
 */
import { createPublicKey } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { buildTakeoutKey } from '../../policy/takeout/issuer/approve.js';
import type { RequestDetail } from '../../policy/takeout/request.js';
import { ISSUER_ALGS, generateIssuerKeyPair, loadIssuerPrivateKey, type IssuerAlg } from '../../policy/takeout/issuer-keys.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { passwordStdinOption, readPassword } from './inputs.js';

const TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface AgentConnection {
  agent: URL;
  caPem: string | undefined;
  user: string;
  password: string;
}

/** Checks the connection options shared by the take-out commands, reads the CA file and the password. */
async function agentConnection(values: { agent: string; ca: string | undefined; user: string }, password: () => Promise<string>): Promise<AgentConnection> {
  const { agent, ca, user } = values;
  let url: URL;
  try {
    url = new URL(agent);
  } catch {
    throw new CliError(`--agent must be an https:// URL (got "${agent}")`, 2);
  }
  if (url.protocol !== 'https:') throw new CliError(`--agent must be an https:// URL (got "${agent}")`, 2);
  let caPem: string | undefined;
  if (ca !== undefined) {
    caPem = await readFile(ca, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read the CA file ${ca}: ${err.code ?? err.message}`);
    });
  }
  return { agent: url, caPem, user, password: await password() };
}

/** One JSON call to the agent; a non-2xx answer becomes a CliError with the agent's message. */
function callAgent<T>(conn: AgentConnection, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const url = new URL(path.replace(/^\//, ''), conn.agent.href.endsWith('/') ? conn.agent : new URL(`${conn.agent.href}/`));
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
          reject(new CliError(`the agent answered ${status}: ${why || 'no details'}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => reject(err instanceof CliError ? err : new CliError(`cannot reach the agent ${conn.agent.origin}: ${err.message}`)));
    req.end(payload);
  });
}

/** mydoc takeout approve: returns the line to print. */
export async function approve(conn: AgentConnection, opts: { id: string; days: number; issuerKeyFile: string }): Promise<string> {
  const issuer = await loadIssuerPrivateKey(opts.issuerKeyFile, '--issuer-key');
  const request = await callAgent<RequestDetail>(conn, 'GET', `/api/takeout/requests/${encodeURIComponent(opts.id)}`);
  const device = await callAgent<{ pcId: string; publicKeyPem: string }>(conn, 'GET', '/api/device-key');
  if (device.pcId !== request.pcId) throw new CliError(`the agent's device key is for PC "${device.pcId}", but the request is for "${request.pcId}"`);
  const devicePublicKey = createPublicKey(device.publicKeyPem);
  const { token, jti, exp } = await buildTakeoutKey({ issuer, admin: conn.user, request, devicePublicKey, days: opts.days, now: Date.now() });
  await callAgent(conn, 'POST', `/api/takeout/requests/${encodeURIComponent(opts.id)}/key`, { token });
  return `approved: take-out key ${jti} for "${request.user}" on PC "${request.pcId}", valid until ${new Date(exp * 1000).toISOString()}\n`;
}

/** mydoc takeout revoke: returns the line to print. */
export async function revoke(conn: AgentConnection, jti: string): Promise<string> {
  const answer = await callAgent<{ user?: string }>(conn, 'POST', '/api/takeout/revocations', { jti });
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

/** The options of the commands that call an agent. */
const connection = {
  agent: { type: 'string', value: 'URL', required: true, description: "the agent's address, e.g. https://pc-42.corp.example:8443/" },
  user: { type: 'string', value: 'ADMIN', required: true, description: 'an administrator of the company directory' },
  'password-stdin': passwordStdinOption,
  ca: { type: 'path', description: "the agent's CA certificate (default: the system's CAs)" },
} as const;

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
    name: 'takeout approve',
    options: {
      id: { type: 'string', value: 'ID', required: true, dashValue: true, description: 'the pending take-out request' },
      days: { type: 'number', required: true, min: 1, integer: true, description: "the take-out period in days (at most the agent's takeout.maxDays)" },
      'issuer-key': { type: 'path', required: true, description: 'the issuer private key' },
      ...connection,
    },
    summary:
      "On the administrator's machine: fetch the pending take-out request ID from the agent, sign a take-out key for N days with the issuer private key, and install it there.",
    async run({ values }, io) {
      const conn = await agentConnection(values, () => readPassword(io));
      io.stdout(await approve(conn, { id: values.id, days: values.days, issuerKeyFile: values['issuer-key'] }));
      return 0;
    },
  }),
  command({
    name: 'takeout revoke',
    options: {
      jti: { type: 'string', value: 'JTI', required: true, dashValue: true, description: 'the take-out key to revoke' },
      ...connection,
    },
    summary: "Revoke a take-out key: refused at once; its slot T is destroyed at the agent's next online check.",
    async run({ values }, io) {
      io.stdout(await revoke(await agentConnection(values, () => readPassword(io)), values.jti));
      return 0;
    },
  }),
];
