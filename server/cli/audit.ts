/** `mydoc audit verify`: checks the audit log's hash chain. */
import { verifyAuditLog } from '../../policy/audit/log.js';
import { dataFolder } from '../../shares/data-folder.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { configFrom, configOption } from './inputs.js';

export const auditCommands = [
  command({
    name: 'audit verify',
    options: {
      file: { type: 'path', description: 'the audit log to check (default <dataDir>/audit/audit.log)' },
      config: configOption,
    },
    summary: "Check the audit log's hash chain: an edited, removed, duplicated or reordered line is reported by number.",
    async run({ values }, io) {
      const file = values.file ?? dataFolder((await configFrom(values.config, io)).dataDir).auditLog;
      const result = await verifyAuditLog(file);
      if (!result.ok) throw new CliError(result.line === 0 ? `audit log ${file}: ${result.problem}` : `audit log damaged at line ${result.line}: ${result.problem}`);
      io.stdout(`audit log OK: ${result.lines} lines, head ${result.head.seq}:${result.head.hash.slice(0, 16)}\n`);
      return 0;
    },
  }),
];
