/**
 * The directory interface the service authenticates against, and the
 * embedded local directory behind it. The policy issue adds Active
 * Directory over LDAP behind the same interface.
 */
import { InsecureLocalFileSecretSource, type NetworkSecretSource } from '../crypto/network-secret.js';
import { LocalDirectory } from './local-directory.js';

export interface Directory {
  readonly kind: string;
  /** True when the password is the user's. Constant time; no lockout. */
  authenticate(user: string, password: string): Promise<boolean>;
  /** Where slot N's K_dir comes from for this directory. */
  readonly secrets: NetworkSecretSource;
}

export class LocalDirectoryService implements Directory {
  readonly kind = 'local';
  readonly secrets: NetworkSecretSource;
  private readonly users: LocalDirectory;

  constructor(usersFile: string, insecureSecretFile: string) {
    this.users = new LocalDirectory(usersFile);
    this.secrets = new InsecureLocalFileSecretSource(insecureSecretFile);
  }

  authenticate(user: string, password: string): Promise<boolean> {
    return this.users.verify(user, password);
  }
}
