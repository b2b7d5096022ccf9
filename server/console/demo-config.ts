/**
 * The demo console's configuration file (`mydoc demo`): the console's
 * configuration with its comments, written once and then read like any
 * other.
 */

export interface ConsoleDemoConfigOptions {
  dataDir: string;
  /** The administrators' port; the agents' link port is the next one. */
  port: number;
  /** The one group of the local directory that has every role. */
  adminsGroup: string;
  /** The agents' NAS folder (relative to this file's folder), for the recovery view. */
  nasDir: string;
}

export function renderConsoleDemoConfig(opts: ConsoleDemoConfigOptions): string {
  const q = (value: string): string => JSON.stringify(value);
  return `# mydoc console configuration (written by "mydoc demo").
# Unknown keys are errors. Relative paths are resolved against the folder of this file.

# The console's data folder: its store, CA and certificate, take-out issuer key, audit trail.
dataDir: ${q(opts.dataDir)}

listen:
  host: "127.0.0.1"
  # The administrators' page and API.
  port: ${opts.port}
  # The agents' links (each agent's console.url names this port).
  linkPort: ${opts.port + 1}
  hostNames: []

directory:
  # "local": a users file with groups, for the demo; "ldap" takes the agent's directory.ldap keys.
  kind: local
  # local:
  #   usersFile: <dataDir>/users.json

# Which groups (local names, or LDAP group DNs; nested groups count) have each role.
roles:
  viewer: [${q(opts.adminsGroup)}]
  approver: [${q(opts.adminsGroup)}]
  data: [${q(opts.adminsGroup)}]
  sharing: [${q(opts.adminsGroup)}]

# The embedded store (<dataDir>/console.sqlite); PostgreSQL for large fleets:
# store: { kind: postgres, postgres: { host: db, port: 5432, database: mydoc, user: console, passwordFile: pg.pw, ssl: verify-full, caFile: pg-ca.pem } }
store:
  kind: sqlite

link:
  # The heartbeat interval the console asks of every agent (seconds).
  heartbeatSeconds: 60
enrolment:
  # How long a token of "mydoc console pc add" is valid.
  tokenHours: 24
takeout:
  # An unanswered take-out request expires after this many days.
  requestExpiryDays: 7
access:
  # 1: reading a user's file contents needs an access request approved by another administrator
  # (for at most maxHours); 0: the data role reads. Listing names and sizes needs only the data role.
  approvals: 0
  maxHours: 8
sharing:
  # A share rule's expiry unless one is given, and the longest allowed (days).
  defaultDays: 30
  maxDays: 90
recovery:
  # The NAS the agents back up to: the recovery view of an offline PC's latest snapshot.
  target: { kind: path, path: ${q(opts.nasDir)} }
`;
}
