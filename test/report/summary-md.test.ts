import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { formatSummaryMarkdown, githubArtifactsUrl } from '../../src/report/summary-md.js';
import { fixture, leakwatch } from '../support/cli.js';

/**
 * The markdown summary of a real run: `leakwatch run` over two leaky fixtures (the swallowed
 * res.end, an early return inside a transaction), as a GitHub Actions runner would run it.
 */

let dir: string;
let report: Report;
let summary: string;
let stepSummary: string;
const GITHUB = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/shop', GITHUB_RUN_ID: '4242' };

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-summary-md-'));
  const stepFile = path.join(dir, 'step-summary.md');
  writeFileSync(stepFile, '## tests\n\nall passed\n');
  const script = `const {spawnSync}=require('node:child_process');for (const f of ${JSON.stringify([fixture('express-error-reporter.mjs'), fixture('pg-transaction-early-return.mjs')])}) spawnSync(process.execPath,[f],{stdio:'inherit'});`;
  const exit = await leakwatch(
    ['run', '--report', path.join(dir, 'r.json'), '--html', 'leaks.html', '--summary-md', path.join(dir, 'summary.md'), '--response-threshold', '300ms', '--connection-threshold', '300ms', '--', process.execPath, '-e', script],
    { env: { ...GITHUB, GITHUB_STEP_SUMMARY: stepFile, LEAKWATCH_TEST_PG_URL: process.env.LEAKWATCH_TEST_PG_URL }, cwd: dir, timeoutMs: 30_000 },
  );
  expect(exit.status, exit.stderr).toBe(1);
  report = JSON.parse(readFileSync(path.join(dir, 'r.json'), 'utf8')) as Report;
  summary = readFileSync(path.join(dir, 'summary.md'), 'utf8');
  stepSummary = readFileSync(stepFile, 'utf8');
}, 40_000);

describe('leakwatch run --summary-md', () => {
  it('heads the summary with what leaked and lists the leaks by route and reason', () => {
    expect(summary.split('\n')[0]).toBe('### leakwatch: 1 leaked response, 1 leaked connection');
    expect(summary).toContain('| `GET /users/:id` | unclosed | 1 | 0 |');
    expect(summary).toContain('| `GET /transfer` | held-after-response-closed | 0 | 1 |');
  });

  it('names the top root causes by their file and line', () => {
    const source = readFileSync(fixture('express-error-reporter.mjs'), 'utf8').split('\n');
    const line = source.findIndex((l) => l.includes('res.end = function reportingEnd')) + 1;
    expect(summary).toContain(`1. 1 response: \`express-error-reporter.mjs:${line}:13\` replaced res.end, and the replacement never called the end it replaced (on \`/users/:id\`)`);
    const pgLine = readFileSync(fixture('pg-transaction-early-return.mjs'), 'utf8').split('\n').findIndex((l) => l.includes('await pool.connect()')) + 1;
    const second = summary.split('\n').find((l) => l.startsWith('2. '));
    expect(second).toMatch(new RegExp(`^2\\. 1 connection: \`.*\\(pg-transaction-early-return\\.mjs:${pgLine}:\\d+\\)\` acquired a pg connection that was never released`));
    expect(second).toMatch(/\(held-after-response-closed, idle-in-transaction\) \(on `\/transfer`\)$/);
  });

  it('writes the HTML report beside it (--html, relative to where run was started)', () => {
    const html = readFileSync(path.join(dir, 'leaks.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('GET /users/boom');
    expect(html).toContain('/transfer');
  });

  it("ends with a link line to the HTML report in the run's artifacts", () => {
    expect(summary.trimEnd().split('\n').at(-1)).toBe('The HTML report, with a timeline of each leak: `leaks.html`, in the [artifacts of this run](https://github.com/acme/shop/actions/runs/4242#artifacts).');
  });

  it('carries no query string, SQL parameter or token', () => {
    expect(summary).not.toMatch(/hunter2|token|amount=|\?/);
  });

  describe('when $GITHUB_STEP_SUMMARY is set', () => {
    it('appends the same summary to it, after what the step wrote before', () => {
      expect(stepSummary).toBe(`## tests\n\nall passed\n${summary}`);
    });
  });

  it('is what leakwatch report writes from the JSON report of the same run', async () => {
    const again = path.join(dir, 'again.md');
    const exit = await leakwatch(['report', path.join(dir, 'r.json'), '--summary-md', again, '--html', 'leaks.html'], { env: GITHUB, cwd: dir });
    expect(exit.status, exit.stderr).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(summary);
  });
});

describe('formatSummaryMarkdown(report)', () => {
  describe('when routes and sites hold markdown and HTML', () => {
    it('keeps them inert: in code spans, table pipes escaped', () => {
      const tampered = structuredClone(report);
      tampered.leakedResponses[0].route = '/a|b/`x`/<img src=https://example.com/t.png>/![i](https://example.com/i.png)';
      tampered.leakedResponses[0].endOverrides[0].at = '/app/[x](https://example.com).js:1:1';
      const md = formatSummaryMarkdown(tampered);
      expect(md).toContain('| ``GET /a\\|b/`x`/<img src=https://example.com/t.png>/![i](https://example.com/i.png)`` |');
      expect(md).toContain('`/app/[x](https://example.com).js:1:1`');
      // Outside code spans, nothing of it appears.
      const outside = md.replace(/(`+)[^`][\s\S]*?\1/g, '');
      expect(outside).not.toMatch(/<img|\]\(|!\[/);
    });
  });

  describe('when nothing leaked', () => {
    it('says so in one heading and one line', () => {
      const clean: Report = { ...report, summary: { ...report.summary, leakedResponses: 0, leakedConnections: 0 }, leakedResponses: [], leakedConnections: [] };
      expect(formatSummaryMarkdown(clean).trimEnd().split('\n')).toEqual(['### leakwatch: no leaks', '', expect.stringMatching(/^\d+ responses \(\d+ aborted\); thresholds: response 300 ms, connection 300 ms\.$/)]);
    });
  });
});

describe('githubArtifactsUrl(env)', () => {
  it("is the run's page at its artifacts on a runner, and nothing elsewhere or with odd values", () => {
    expect(githubArtifactsUrl(GITHUB)).toBe('https://github.com/acme/shop/actions/runs/4242#artifacts');
    expect(githubArtifactsUrl({})).toBeUndefined();
    expect(githubArtifactsUrl({ ...GITHUB, GITHUB_REPOSITORY: 'acme/shop)[x' })).toBeUndefined();
  });
});
