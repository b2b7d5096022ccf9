/**
 * Builds the console from its configuration, without listening: the store,
 * the audit trail, the registry of PCs the link server admits through, the
 * agents' links as the other parts see them, take-out's decisions (with the
 * issuer key), the administrators' login, and the fastify app (HTTPS,
 * listen.port) with the JSON API and the administrators' page on it. `serve.ts` listens (the app, the link port, the admin
 * socket); tests compose the same way.
 *
 * Security considerations: the issuer private key is loaded here and only
 * handed to the parts that sign (take-out keys, /pcs grants, share rules); the app logs no
 * Authorization header and no cookie.
 */
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AuditLog } from '../../policy/audit/log.js';
import { loadIssuerPrivateKey } from '../../policy/takeout/issuer-keys.js';
import { systemClock, type Clock } from '../../shares/clock.js';
import { ConfiguredFileError } from '../config/errors.js';
import { useErrorStatus, type ErrorAnswer } from '../http/error-status.js';
import { LinkError } from '../link/errors.js';
import { AccessRequests } from './access/access-requests.js';
import { AdminAuthenticator, buildAdminDirectory } from './admins.js';
import { registerConsoleApi } from './api/takeout-api.js';
import { openConsoleAudit } from './audit.js';
import { onlineWindowMs, type ConsoleConfig } from './config.js';
import { consoleFolder } from './data-folder.js';
import { CONSOLE_STATUS } from './error-status.js';
import { requireConsoleInitialised } from './init.js';
import type { LinkHub, LinkStreamAnswer } from './link/hub.js';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import { openConfiguredStore } from './open-store.js';
import type { PcAdmin } from './pcs.js';
import { Registry } from './registry.js';
import type { ConsoleStore } from './store/store.js';
import { ConsoleTakeout } from './takeout/console-takeout.js';
import { ShareRules } from './sharing/share-rules.js';
import { GranteeBasicAuth } from './sharing/grantee-basic.js';
import { registerSharedDav } from './sharing/shared-routes.js';
import { registerAdminWeb } from './web/register.js';
import { RecoveryKeys } from './recovery/recovery-keys.js';
import { loggableUrl } from './web/files.js';
import { AdminBasicAuth } from './dav/admin-basic.js';
import { davRoute } from './dav/dav-request.js';
import { registerPcsDav } from './dav/pcs-routes.js';
import type { ForwardDeps } from './dav/forward.js';
import { pinoOptions, type LogOptions } from '../http/log-options.js';

export interface ConsoleOptions extends LogOptions {
  config: ConsoleConfig;
  version: string;
  /** The clock of every part that keeps time (default the system clock). */
  clock?: Clock;
}

/**
 * The agents' links as the console's parts see them: the link server's hub
 * once serve.ts has started it (`attach`). Before that, and in a console
 * composed without listening, no PC is connected: a request is refused at
 * once with ERR_LINK_OFFLINE, as for any PC without a link.
 */
export class ConsoleLinks implements LinkHub {
  private hub: LinkHub | undefined;

  attach(hub: LinkHub): void {
    this.hub = hub;
  }

  get size(): number {
    return this.hub?.size ?? 0;
  }

  isConnected(pcId: string): boolean {
    return this.hub?.isConnected(pcId) ?? false;
  }

  request(pcId: string, path: string, body: unknown, opts?: { timeoutMs?: number }): Promise<{ status: number; body: unknown }> {
    if (!this.hub) return Promise.reject(new LinkError('ERR_LINK_OFFLINE', `PC ${pcId} is not connected`));
    return this.hub.request(pcId, path, body, opts);
  }

  stream(pcId: string, headers: OutgoingHttpHeaders, body: Readable | undefined, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<LinkStreamAnswer> {
    if (!this.hub) return Promise.reject(new LinkError('ERR_LINK_OFFLINE', `PC ${pcId} is not connected`));
    return this.hub.stream(pcId, headers, body, opts);
  }

  drop(pcId: string): void {
    this.hub?.drop(pcId);
  }

  async close(): Promise<void> {
    await this.hub?.close();
    this.hub = undefined;
  }
}

/** The assembled console: nothing listens until serve.ts starts it; `close` ends what is opened here. */
export interface Console {
  config: ConsoleConfig;
  app: FastifyInstance;
  store: ConsoleStore;
  /** The console's audit trail (its one writer). */
  audit: AuditLog;
  registry: Registry;
  links: ConsoleLinks;
  /** The console's issuer public key (PEM): every welcome carries it, for the agents to pin. */
  issuerPublicPem: string;
  /** The TLS key and certificate of both ports. */
  tls: { key: string; cert: string };
  /** Take-out decisions (approve, deny, revoke, expiry of unanswered requests; `start` arms its sweep). */
  takeout: ConsoleTakeout;
  /** The administrators' login against the console's directory. */
  admins: AdminAuthenticator;
  /** The two-person rule (access.approvals): access requests and `contentsAllowed`. */
  access: AccessRequests;
  /** Share rules: create, revoke, list; each change (and each connect) sends the PC its signed set. */
  sharing: ShareRules;
  /** What `mydoc console pc add|remove` do, on this console's store, trail and links. */
  pcAdmin: PcAdmin;
  clock: Clock;
  /** Closes the app, writes the last presence, and closes the audit trail and the store. */
  close(): Promise<void>;
}

function jsonAnswer(reply: FastifyReply, a: ErrorAnswer): FastifyReply {
  return reply.code(a.status).send({ error: { code: a.code ?? (a.status >= 500 ? 'ERR_INTERNAL' : 'ERR_REQUEST'), message: a.message } });
}

export async function composeConsole(opts: ConsoleOptions): Promise<Console> {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const paths = consoleFolder(config.dataDir);
  await requireConsoleInitialised(config);
  const [key, cert] = await Promise.all([readFile(paths.tls.keyFile, 'utf8'), readFile(paths.tls.certFile, 'utf8')]).catch((err: Error) => {
    throw new ConfiguredFileError(`cannot read the console's TLS key or certificate: ${err.message}`);
  });
  const issuerKey = await loadIssuerPrivateKey(paths.issuerPrivateKey, "the console's take-out issuer key");
  const issuerPublicPem = await readFile(paths.issuerPublicKey, 'utf8').catch((err: Error) => {
    throw new ConfiguredFileError(`cannot read the console's issuer public key: ${err.message}`);
  });
  const app = Fastify({
    https: { key, cert, minVersion: 'TLSv1.2' },
    return503OnClosing: true,
    // WebDAV paths never reach the router: /pcs and /shared go to one route each (dav/pcs-routes.ts).
    rewriteUrl: (req) => davRoute(req.url ?? '/'),
    logger: {
      ...pinoOptions(opts),
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      // No path of users' data in the log: /pcs and /shared are rewritten to their route, the file browser's URLs are cut.
      serializers: { req: (req: FastifyRequest) => ({ method: req.method, url: loggableUrl(req.url), remoteAddress: req.ip }) },
    },
  });
  // What can fail on a file the configuration names comes before the store and the trail are open.
  const directory = await buildAdminDirectory(config.directory);
  const store = await openConfiguredStore(config, app.log);
  const audit = await openConsoleAudit(config.dataDir, clock).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const links = new ConsoleLinks();

  const takeout = new ConsoleTakeout({ store, hub: links, issuerKey, audit, requestExpiryDays: config.takeout.requestExpiryDays, clock, logger: app.log.child({ part: 'takeout' }) });
  const access = new AccessRequests({ store, audit, access: config.access, clock });
  const sharing = new ShareRules({ store, hub: links, issuerKey, audit, sharing: config.sharing, clock, logger: app.log.child({ part: 'sharing' }) });
  const admins = new AdminAuthenticator({ directory, roles: config.roles, audit, clock, logger: app.log.child({ part: 'admins' }) });
  const registry = new Registry({
    store,
    audit,
    clock,
    logger: app.log.child({ part: 'registry' }),
    onAgentEvent: (pcId, event) => takeout.onAgentEvent(pcId, event),
    // What was decided while the PC was away reaches it now.
    // The PC's share rules (signed) reach it at every connect.
    onConnected: async (pcId) => {
      await Promise.all([takeout.reconcile(pcId), sharing.push(pcId)]);
    },
  });

  useErrorStatus(app, CONSOLE_STATUS, jsonAnswer);
  app.get('/healthz', async () => ({ ok: true, version: opts.version }));

  // The JSON API (mydoc takeout ... --console) and the administrators' page, on one origin.
  registerConsoleApi(app, { store, admins, takeout, access });

  // The administrators' WebDAV over every PC (/pcs), through the links; grants signed with the issuer key.
  const forward: ForwardDeps = { hub: links, store, issuerKey, clock, logger: app.log.child({ part: 'dav' }) };
  const data = { audit, contentsAllowed: (admin: string, pcId: string, user: string) => access.contentsAllowed(admin, pcId, user), logger: app.log.child({ part: 'dav' }) };
  registerPcsDav(app, { store, forward, auth: new AdminBasicAuth(admins, clock), data, clock, logger: app.log.child({ part: 'dav' }) });
  // The grantees' WebDAV (/shared): any directory account, through the live share rules naming it or its groups.
  const granteeAuth = new GranteeBasicAuth({ directory, audit, clock, logger: app.log.child({ part: 'shared' }) });
  registerSharedDav(app, { rules: sharing, auth: granteeAuth, forward, audit, clock, logger: app.log.child({ part: 'shared' }) });
  registerAdminWeb(app, {
    store,
    admins,
    takeout,
    access,
    sharing,
    hub: links,
    audit: { file: paths.auditLog },
    onlineWindowMs: onlineWindowMs(config),
    clock,
    logger: app.log.child({ part: 'web' }),
    // The recovery key an administrator gives is held per web session, in memory only (recovery/recovery-keys.ts).
    recovery: { target: config.recovery.target, keys: new RecoveryKeys(clock), audit },
    files: { forward, data },
  });

  const pcAdmin: PcAdmin = { store, audit, clock, tokenHours: config.enrolment.tokenHours, dropLink: (pcId) => links.drop(pcId) };
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      takeout.close();
      await app.close();
      await registry.close();
      await audit.close();
      await store.close();
    })());
  return { config, app, store, audit, registry, links, takeout, admins, access, sharing, issuerPublicPem, tls: { key, cert }, pcAdmin, clock, close };
}
