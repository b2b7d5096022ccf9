/**
 * The demo's configuration file (`mydoc demo`): the agent's configuration
 * with its comments, written once and then read like any other.
 */
import { DEFAULT_BACKUP_SCHEDULE } from './config.js';

export interface DemoConfigOptions {
  pcId: string;
  dataDir: string;
  /** Folder standing in for the NAS share: the backup target. */
  nasDir: string;
  /** Path of the recovery public key PEM. */
  recoveryPublicKey: string;
  /** Port of the demo service (default 8443). */
  port?: number;
  /** Issuer public key files (e.g. the demo console's): written as `takeout.issuerPublicKeys` (else it is a comment). */
  issuerPublicKeys?: readonly string[];
  /** The demo console's link: written as the `console:` section (else it is a comment). */
  console?: { url: string; caFile: string; enrolmentToken: string };
}

/**
 * YAML text (with comments) of a config for the demo: local directory, backup to a folder.
 * Paths are written as given; relative ones will resolve against the folder the file is written to.
 */
export function renderDemoConfig(opts: DemoConfigOptions): string {
  const q = (value: string): string => JSON.stringify(value);
  return `# mydoc configuration (written by "mydoc demo").
# Unknown keys are errors. Relative paths are resolved against the folder of this file.

# Name of this PC: 1 to 63 letters, digits, ".", "_" or "-".
pcId: ${q(opts.pcId)}

# Folder for this PC's mydoc data; the defaults below live under it.
dataDir: ${q(opts.dataDir)}

listen:
  # Address the WebDAV server listens on. Keep it on loopback unless the guest needs more.
  host: "127.0.0.1"
  port: ${opts.port ?? 8443}
  # Extra DNS names / IP addresses put in the TLS certificate (127.0.0.1 and localhost are always there).
  hostNames: []

# TLS files default to <dataDir>/tls/server-cert.pem, server-key.pem and ca-cert.pem.
# tls:
#   certFile: ...
#   keyFile: ...
#   caFile: ...

directory:
  # Where users and their network secrets come from. "local" is a stand-in for a company
  # directory: it keeps the network secrets in a plain file, which is NOT secure.
  kind: local
  # local:
  #   usersFile: <dataDir>/local-directory/users.json
  #   insecureSecretFile: <dataDir>/local-directory/INSECURE-network-secrets.json

backup:
  target:
    # "path": a folder (here a stand-in for the NAS). "smb" takes url: //host/share[/folder] and authFile.
    kind: path
    path: ${q(opts.nasDir)}
  # Scheduled backups (cron: minute hour day-of-month month weekday, or "off"), read in
  # this time zone, each started up to randomDelaySeconds late so a fleet spreads out.
  # A missed run is caught up at start.
  schedule: "${DEFAULT_BACKUP_SCHEDULE}"
  timezone: "UTC"
  randomDelaySeconds: 600
  # At service stop (shutdown) copying stops after this many seconds; the rest goes next time.
  shutdownDeadlineSeconds: 60

recovery:
  # Public key (PEM, SPKI) of the recovery key pair. Optional.
  publicKey: ${q(opts.recoveryPublicKey)}

# Take-out keys (offline use for a limited time, approved by an administrator).
# "mydoc keys issuer" writes an issuer key pair; list the public files here.
${
  opts.issuerPublicKeys
    ? `takeout:\n  maxDays: 14\n  issuerPublicKeys: [${opts.issuerPublicKeys.map(q).join(', ')}]`
    : '# takeout:\n#   maxDays: 14\n#   issuerPublicKeys: [issuer-public.pem]'
}

# The console this PC keeps one link to (it dials out; nothing dials in). Without this
# section the PC works on its own. "mydoc console pc add PCID" prints the token, needed once.
${
  opts.console
    ? `console:\n  url: ${q(opts.console.url)}\n  caFile: ${q(opts.console.caFile)}\n  enrolmentToken: ${q(opts.console.enrolmentToken)}`
    : '# console:\n#   url: "https://console.example:9444"\n#   caFile: console-ca.pem\n#   enrolmentToken: "..."'
}
`;
}
