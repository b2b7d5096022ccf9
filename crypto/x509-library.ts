/**
 * @peculiar/x509 (certificate generation), loaded the first time a
 * certificate is made: loading it costs a process about 8 MiB of memory,
 * which `mydoc serve` would otherwise carry for nothing once its
 * certificates exist. Its WebCrypto provider is Node's own.
 */
import { webcrypto } from 'node:crypto';

type X509Library = typeof import('@peculiar/x509');

let loading: Promise<X509Library> | undefined;

export function x509Library(): Promise<X509Library> {
  loading ??= import('@peculiar/x509').then((x509) => {
    x509.cryptoProvider.set(webcrypto);
    return x509;
  });
  return loading;
}
