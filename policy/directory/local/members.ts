/**
 * The embedded `local` directory as the console's administrators log in
 * against it: passwords checked against a local users file, and the groups
 * of that file (nested groups count) for the role mapping. Demo and tests.
 */
import type { MemberDirectory, MemberResult } from '../directory.js';
import { normalizeUserName } from '../user-name.js';
import { LocalUsersFile } from './users-file.js';

export class LocalMemberDirectory implements MemberDirectory {
  private readonly users: LocalUsersFile;

  constructor(usersFile: string) {
    this.users = new LocalUsersFile(usersFile);
  }

  async authenticateMember(login: string, password: string, groups: readonly string[]): Promise<MemberResult> {
    const user = normalizeUserName(login);
    const found = await this.users.verifyMember(user, password, groups);
    return found ? { ok: true, user, groups: found } : { ok: false, reason: 'wrong user name or password' };
  }
}
