/**
 * RFC 4918 conformance with litmus 0.13 (Debian package `litmus`) against a real `mydoc serve`,
 * at `/Documents/` of a fresh user's vault.
 *
 * TLS: litmus 0.13 installs a neon verify callback that accepts every certificate (checked: a
 * self-signed certificate for another host name gives "Verification failures 8 => 12
 * (status = 0)" in debug.log and the tests go on). So litmus needs no trust set-up here, and it
 * does NOT test certificate trust: startServer() already checked /healthz with the data
 * folder's CA, and the rclone test verifies with --ca-cert.
 *
 * Every suite must pass with 0 failures; the warnings and skipped tests litmus reports must be
 * exactly the allow-lists below, each entry with its reason.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, startServer, type RunningServer } from './helpers/server.js';

const SUITES = ['basic', 'copymove', 'props', 'locks', 'http'] as const;

interface Allowed {
  /** `suite/test: message`, with the origin written as `<origin>`. */
  warning: string;
  reason: string;
}

/** Warnings litmus may print, each with a one-line reason. Filled once the server runs. */
const ALLOWED_WARNINGS: Allowed[] = [];

/** Tests litmus may skip (`suite/test`), each with a one-line reason. */
const ALLOWED_SKIPS: { test: string; reason: string }[] = [
  { test: 'http/expect100', reason: 'litmus 0.13 always skips it on https URLs ("skipping for SSL server")' },
];

interface SuiteResult {
  suite: string;
  summary: string | null;
  run: number;
  passed: number;
  failed: number;
  failures: string[];
  warnings: string[];
  skipped: string[];
  /** From "-> N tests were skipped." (cross-check of `skipped`). */
  skipCount: number;
  lines: string[];
}

/**
 * Parses litmus output. Without a terminal, litmus prints each test name twice on its line:
 * ` 3. put_get.............  3. put_get............. pass`, `... FAIL (reason)`,
 * `... WARNING: text` followed by `    ...................... pass (with 1 warning)`,
 * `... SKIPPED`; then `<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%`.
 */
export function parseLitmus(output: string, origin: string): Map<string, SuiteResult> {
  const results = new Map<string, SuiteResult>();
  let current: SuiteResult | null = null;
  let currentTest = '?';
  const lines = output.replaceAll('\r', '\n').split('\n');
  const clean = (s: string) => s.replaceAll(origin, '<origin>').trim();
  for (let i = 0; i < lines.length; i++) {
    // Colour escapes appear only on a terminal, but strip them anyway.
    const line = lines[i]!.replace(/\x1b\[[0-9;]*m/g, '');
    const running = /^-> running `([^']+)':/.exec(line);
    if (running) {
      current = { suite: running[1]!, summary: null, run: 0, passed: 0, failed: 0, failures: [], warnings: [], skipped: [], skipCount: 0, lines: [] };
      results.set(current.suite, current);
      continue;
    }
    if (current === null) continue;
    current.lines.push(line);
    // The first "N. name" on the line; after a warning the next test starts on the
    // "    ...................... 19. complex_cond_put...... pass" continuation line.
    const name = /(?:^|\s)\d+\.\s+([A-Za-z0-9_]+)/.exec(line);
    if (name) currentTest = name[1]!;
    const warning = /WARNING: (.*)$/.exec(line);
    if (warning) current.warnings.push(`${current.suite}/${currentTest}: ${clean(warning[1]!)}`);
    const fail = /\bFAIL(?: \((.*))?$/.exec(line);
    if (fail && name) {
      // The reason may go on over the next lines until the closing parenthesis.
      let reason = fail[1] ?? '';
      while (reason !== '' && !reason.endsWith(')') && i + 1 < lines.length && !/^\s*\d+\.\s|^<- /.test(lines[i + 1]!)) {
        reason += ` ${lines[++i]!.trim()}`;
      }
      current.failures.push(`${current.suite}/${currentTest}: ${clean(reason.replace(/\)$/, ''))}`);
    }
    if (/\bSKIPPED\b/.test(line) && name) current.skipped.push(`${current.suite}/${currentTest}`);
    const skippedLine = /^-> (\d+) tests? (?:was|were) skipped\./.exec(line);
    if (skippedLine) current.skipCount = Number(skippedLine[1]);
    const summary = /^<- summary for `([^']+)': of (\d+) tests run: (\d+) passed, (\d+) failed\. ([\d.]+)%/.exec(line);
    if (summary) {
      current.summary = line.trim();
      current.run = Number(summary[2]);
      current.passed = Number(summary[3]);
      current.failed = Number(summary[4]);
    }
    if (/^<- all tests skipped for `/.test(line)) current.summary = line.trim();
  }
  return results;
}

let server: RunningServer;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** Runs litmus with TESTS=`suites` in a scratch folder (it writes debug.log and child.log there). */
async function litmus(t: TestContext, suites: readonly string[], keepGoing: boolean) {
  const cwd = await mkdtemp(join(tmpdir(), 'mydoc-litmus-'));
  try {
    const url = `${server.url}Documents/`;
    const args = [...(keepGoing ? ['-k'] : []), url, server.user.name, server.user.password];
    const r = await runCommand('litmus', args, {
      cwd,
      env: { ...process.env, TESTS: suites.join(' ') },
      timeoutMs: 300_000,
    });
    const origin = server.url.replace(/\/$/, '');
    const results = parseLitmus(r.stdout, origin);
    let kept = '';
    if (r.status !== 0 || [...results.values()].some((s) => s.failed > 0)) {
      // Keep litmus's network trace for the report.
      kept = join(tmpdir(), `mydoc-litmus-${suites.join('-')}-${process.pid}-debug.log`);
      await copyFile(join(cwd, 'debug.log'), kept).catch(() => (kept = '(no debug.log)'));
    }
    for (const s of results.values()) {
      t.diagnostic(`${s.summary ?? `no summary for ${s.suite}`}${s.warnings.length > 0 ? ` (${s.warnings.length} warning(s))` : ''}`);
      for (const w of s.warnings) t.diagnostic(`  warning ${w}`);
      for (const f of s.failures) t.diagnostic(`  FAIL ${f}`);
      for (const k of s.skipped) t.diagnostic(`  skipped ${k}`);
    }
    return { r, results, kept };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

function assertSuites(suites: readonly string[], run: Awaited<ReturnType<typeof litmus>>): void {
  const { r, results, kept } = run;
  const context = `\n--- litmus stdout ---\n${r.stdout}\n--- litmus stderr ---\n${r.stderr}\n--- debug.log kept at ${kept || '(not kept)'} ---\n--- server output (tail) ---\n${server.output().slice(-4000)}`;
  for (const suite of suites) {
    const s = results.get(suite);
    assert.ok(s, `litmus did not run suite ${suite}${context}`);
    assert.ok(s.summary !== null && /^<- summary/.test(s.summary), `suite ${suite}: no summary line${context}`);
    assert.deepEqual(s.failures, [], `suite ${suite}: failures${context}`);
    assert.equal(s.failed, 0, `suite ${suite}: ${s.summary}${context}`);
    assert.equal(s.passed, s.run, `suite ${suite}: ${s.summary}${context}`);
    assert.ok(s.run > 0, `suite ${suite}: no tests ran${context}`);
    assert.equal(s.skipped.length, s.skipCount, `suite ${suite}: parsed skips differ from litmus's count${context}`);
  }
  // The allow-lists span all suites: compare only the share of the suites that ran.
  const ofSuites = (entry: string) => suites.includes(entry.slice(0, entry.indexOf('/')));
  const warnings = [...results.values()].flatMap((s) => s.warnings).sort();
  const allowedWarnings = ALLOWED_WARNINGS.map((w) => w.warning).filter(ofSuites).sort();
  assert.deepEqual(warnings, allowedWarnings, `litmus warnings differ from the allow-list${context}`);
  const skipped = [...results.values()].flatMap((s) => s.skipped).sort();
  const allowedSkips = ALLOWED_SKIPS.map((s) => s.test).filter(ofSuites).sort();
  assert.deepEqual(skipped, allowedSkips, `litmus skipped tests differ from the allow-list${context}`);
  assert.equal(r.status, 0, `litmus exit status ${r.status ?? r.signal}${context}`);
}

for (const suite of SUITES) {
  test(`litmus ${suite}`, async (t) => {
    assertSuites([suite], await litmus(t, [suite], false));
  });
}

test('litmus: all suites in one run (TESTS="basic copymove props locks http")', async (t) => {
  const run = await litmus(t, SUITES, true);
  assertSuites(SUITES, run);
});
