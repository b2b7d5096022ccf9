/**
 * The `listen` keys every HTTPS process of mydoc reads the same way (the
 * agent's config.ts, the console's server/console/config.ts): the address,
 * ports, and the extra names of the TLS certificate.
 */
import { isIP } from 'node:net';
import { isDnsName } from '../http/tls.js';
import { ConfigError } from './errors.js';
import { describe, dotted, ownValue, readString, type Mapping } from './yaml-reader.js';

/** `listen.host`: an IP address or a DNS host name (default 127.0.0.1). */
export function readListenHost(listen: Mapping, parentKey: string): string {
  const host = readString(listen, parentKey, 'host') ?? '127.0.0.1';
  if (!isHostName(host)) throw new ConfigError(dotted(parentKey, 'host'), `must be an IP address or a DNS host name (got ${describe(host)})`);
  return host;
}

/** A TCP port, `fallback` when absent. */
export function readPortNumber(listen: Mapping, parentKey: string, name: string, fallback: number): number {
  const port = ownValue(listen, name);
  if (port === undefined) return fallback;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(dotted(parentKey, name), `must be an integer from 1 to 65535 (got ${describe(port)})`);
  }
  return port;
}

/** `listen.hostNames`: extra DNS names / IP addresses for the TLS certificate (default none). */
export function readHostNames(listen: Mapping, parentKey: string): string[] {
  const key = dotted(parentKey, 'hostNames');
  const value = ownValue(listen, 'hostNames');
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(key, `must be a list of DNS names or IP addresses (got ${describe(value)})`);
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string' || !isHostName(item)) throw new ConfigError(`${key}.${index}`, `must be a DNS host name or an IP address (got ${describe(item)})`);
    return item;
  });
}

function isHostName(value: string): boolean {
  return isIP(value) !== 0 || isDnsName(value);
}
