/**
 * The embedded `local` directory as the service uses it: passwords checked
 * against the local users file, network secrets from the INSECURE
 * local-file source, no servers to probe (always reachable).
 */
import { InsecureLocalFileSecretSource, type NetworkSecretSource } from '../../../crypto/network-secret.js';
import type { AuthResult, Directory } from '../directory.js';
import { normalizeUserName } from '../user-name.js';
import { LocalUsersFile } from './users-file.js';

export class LocalDirectory implements Directory {
  readonly kind = 'local';
  readonly secrets: NetworkSecretSource;
  readonly servers: readonly string[] = [];
  private readonly users: LocalUsersFile;

  constructor(usersFile: string, insecureSecretFile: string) {
    this.users = new LocalUsersFile(usersFile);
    this.secrets = new InsecureLocalFileSecretSource(insecureSecretFile);
  }

  async authenticate(login: string, password: string): Promise<AuthResult> {
    const user = normalizeUserName(login);
    const role = await this.users.verify(user, password);
    return role ? { ok: true, user, admin: role.admin } : { ok: false, reason: 'wrong user name or password' };
  }

  async probe(): Promise<boolean> {
    return true;
  }
}
