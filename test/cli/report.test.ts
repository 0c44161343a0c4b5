import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch } from '../support/cli.js';

let dir: string;
let reportFile: string;
let report: Report;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-report-cli-'));
  reportFile = path.join(dir, 'r.json');
  const exit = await leakwatch(['run', '--report', reportFile, '--response-threshold', '300ms', '--', process.execPath, fixture('express-error-reporter.mjs')]);
  expect(exit.status, exit.stderr).toBe(1);
  report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
});

/** A copy of the report with `change` applied, in a file of its own. */
function variant(name: string, change: (r: any) => unknown): string {
  const copy = structuredClone(report) as any;
  change(copy);
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(copy));
  return file;
}

describe('leakwatch report', () => {
  describe('when given a JSON report and --html', () => {
    it('writes the HTML report of it, and exits 0', async () => {
      const html = path.join(dir, 'out', 'r.html');
      const exit = await leakwatch(['report', reportFile, '--html', html]);
      expect(exit.status, exit.stderr).toBe(0);
      expect(readFileSync(html, 'utf8')).toBe(formatHtml(report));
      expect(exit.stdout + exit.stderr).toBe('');
    });
  });

  describe('when given no output', () => {
    it('prints the readable summary', async () => {
      const exit = await leakwatch(['report', reportFile]);
      expect(exit.status).toBe(0);
      expect(exit.stdout).toMatch(/^leakwatch: \d+ responses \(0 aborted\), 1 leaked response, 0 leaked connections/);
      expect(exit.stdout).toContain('GET /users/boom (route /users/:id): never closed');
    });
  });

  describe.each([
    ['a file that does not exist', () => path.join(dir, 'missing.json'), /^leakwatch: cannot read .*missing\.json \(ENOENT\); give the JSON file that leakwatch run --report wrote\.$/],
    ['a file that is not JSON', () => (writeFileSync(path.join(dir, 'cut.json'), '{"schemaVersion": 1, "tool"'), path.join(dir, 'cut.json')), /^leakwatch: .*cut\.json is not JSON \(.+\); give the JSON file/],
    ['JSON that is not a report', () => (writeFileSync(path.join(dir, 'other.json'), '{"name": "my-app"}'), path.join(dir, 'other.json')), /^leakwatch: .*other\.json is not a leakwatch report: the report lacks schemaVersion; the report lacks tool;/],
    [
      'a report with a wrong field',
      () => variant('wrong.json', (r) => ((r.leakedResponses[0].reason = 'stuck'), (r.leakedResponses[0].events[0].at = 'yesterday'))),
      /^leakwatch: .*wrong\.json is not a leakwatch report: \/leakedResponses\/0\/reason must be one of "unclosed", "open-at-exit", not "stuck"; \/leakedResponses\/0\/events\/0\/at must be a date-time\.$/,
    ],
    ['a report with a field the schema does not have', () => variant('extra.json', (r) => (r.summary.secrets = 1)), /\/summary has secrets, which a leakwatch report does not have\.$/],
    ['a report of a later schema version', () => variant('v2.json', (r) => (r.schemaVersion = 2)), /^leakwatch: .*v2\.json is a report of schemaVersion 2, and leakwatch [\d.]+ reads version 1; use the leakwatch that wrote it\.$/],
  ])('when given %s', (_what, file, message) => {
    it('stops with exit 2 and one sentence that says what is wrong, writing nothing', async () => {
      const html = path.join(dir, `${_what.replace(/\W+/g, '-')}.html`);
      const exit = await leakwatch(['report', file(), '--html', html]);
      expect(exit.status).toBe(2);
      expect(exit.stderr.trim().split('\n')).toHaveLength(1);
      expect(exit.stderr.trim()).toMatch(message);
      expect(existsSync(html)).toBe(false);
    });
  });

  describe('when an output cannot be written', () => {
    it('is a usage error naming the flag, before the report is read', async () => {
      const exit = await leakwatch(['report', path.join(dir, 'missing.json'), '--summary-md', '/proc/nope/s.md']);
      expect(exit.status).toBe(2);
      expect(exit.stderr.trim()).toBe('leakwatch: --summary-md /proc/nope/s.md cannot be written: no file can be created in /proc (ENOENT); choose another path.');
    });
  });

  it('says how it is used with --help, and when the report is missing', async () => {
    const help = await leakwatch(['report', '--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--html', '--summary-md']) expect(help.stdout).toContain(flag);
    const none = await leakwatch(['report']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no report to read; usage: leakwatch report REPORT.json');
    expect((await leakwatch(['--help'])).stdout).toContain('report REPORT.json');
  });
});
