import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { XMLParser } from 'fast-xml-parser';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch, REGISTER, ROOT, runCommand } from '../support/cli.js';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(schema);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-cli-test-'));
});

function readReport(file: string): Report {
  const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
  expect(validate(report), ajv.errorsText(validate.errors)).toBe(true);
  return report;
}

describe('leakwatch run', () => {
  describe.each([
    ['express-error-reporter.mjs', 'GET', '/users/boom', '/users/:id'],
    ['never-answers.mjs', 'GET', '/hang', null],
    ['koa-app.mjs', 'GET', '/api/items/stuck', '/api/items/:id'],
    ['fastify-app.mjs', 'GET', '/orders/stuck', '/orders/:id'],
    ['hono-app.mjs', 'GET', '/reports/stuck', '/reports/:id'],
  ])('with the leaky fixture %s', (name, method, leakedPath, route) => {
    it('exits 1 and writes a report that validates against the schema and names the leak', async () => {
      const file = path.join(dir, `${name}.json`);
      const junit = path.join(dir, `${name}.xml`);
      const exit = await leakwatch(['run', '--report', file, '--junit', junit, '--response-threshold', '300ms', '--', process.execPath, fixture(name)]);
      expect(exit.status, exit.stderr).toBe(1);
      const report = readReport(file);
      expect(report.summary.leakedResponses).toBe(1);
      expect(report.leakedResponses).toEqual([expect.objectContaining({ method, path: leakedPath, route, reason: 'unclosed' })]);
      expect(report.thresholds.responseMs).toBe(300);
      expect(JSON.stringify(report)).not.toMatch(/hunter2|session=|token=|\?/);
      expect(exit.stderr).toContain(`${method} ${leakedPath}`);
      const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8'));
      const suite = xml.testsuites.testsuite;
      expect(suite['@_failures']).toBe('1');
      expect([suite.testcase].flat()[0].failure['@_type']).toBe('unclosed');
    });
  });

  it('reports the replacement of res.end that swallowed the call, with its file and line', async () => {
    const file = path.join(dir, 'seed.json');
    await leakwatch(['run', '--report', file, '--response-threshold', '300ms', '--', process.execPath, fixture('express-error-reporter.mjs')]);
    const source = readFileSync(fixture('express-error-reporter.mjs'), 'utf8').split('\n');
    const line = source.findIndex((l) => l.includes('res.end = function reportingEnd')) + 1;
    expect(readReport(file).leakedResponses[0].endOverrides).toEqual([
      { at: `${fixture('express-error-reporter.mjs')}:${line}:13`, called: true, calledThrough: false },
    ]);
  });

  it('exits 0 with zero leaks for the healthy fixture (SSE, slow handler, keep-alive bursts, client aborts)', async () => {
    const file = path.join(dir, 'healthy.json');
    const junit = path.join(dir, 'healthy.xml');
    const exit = await leakwatch(['run', '--report', file, '--junit', junit, '--response-threshold', '300ms', '--', process.execPath, fixture('healthy.mjs')]);
    expect(exit.status, exit.stderr).toBe(0);
    const report = readReport(file);
    expect(report.summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0 });
    expect(report.summary.responses).toBe(44);
    expect(report.summary.aborted).toBe(2);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8'));
    expect(xml.testsuites['@_failures']).toBe('0');
  });

  it('reports a handler that never answered as open-at-exit when the process is stopped by SIGTERM', async () => {
    const file = path.join(dir, 'sigterm.json');
    let sent = false;
    const exit = await leakwatch(['run', '--report', file, '--', process.execPath, fixture('never-answers.mjs')], {
      env: { FIXTURE_SERVE: '1' },
      onStdout(text, child) {
        const match = /listening (\d+)/.exec(text);
        if (!match || sent) return;
        sent = true;
        const req = http.request({ host: '127.0.0.1', port: Number(match[1]), path: '/hang' });
        req.on('error', () => {});
        req.end();
        setTimeout(() => child.kill('SIGTERM'), 300);
      },
    });
    expect(exit.status, exit.stderr).toBe(1);
    const report = readReport(file);
    expect(report.leakedResponses).toEqual([expect.objectContaining({ path: '/hang', reason: 'open-at-exit' })]);
  });

  it('merges the reports of every Node process the command starts', async () => {
    const file = path.join(dir, 'merged.json');
    const script = `const {spawnSync}=require('node:child_process');for (const f of ${JSON.stringify([fixture('never-answers.mjs'), fixture('koa-app.mjs')])}) spawnSync(process.execPath,[f],{stdio:'inherit'});`;
    const exit = await leakwatch(['run', '--report', file, '--response-threshold', '300ms', '--', process.execPath, '-e', script]);
    expect(exit.status, exit.stderr).toBe(1);
    const report = readReport(file);
    expect(report.leakedResponses.map((r) => r.path).sort()).toEqual(['/api/items/stuck', '/hang']);
    expect(new Set(report.leakedResponses.map((r) => r.id.split(':')[0])).size).toBe(2);
  });

  it("passes the command's own failure through, and --no-fail turns leaks into exit 0", async () => {
    expect((await leakwatch(['run', '--', process.execPath, '-e', 'process.exit(3)'])).status).toBe(3);
    const noFail = await leakwatch(['run', '--no-fail', '--response-threshold', '300ms', '--', process.execPath, fixture('never-answers.mjs')]);
    expect(noFail.status).toBe(0);
    expect(noFail.stderr).toContain('1 leaked response');
    expect((await leakwatch(['run', '--', 'no-such-command-leakwatch'])).status).toBe(127);
  });

  it('stops with a sentence naming the option, the value and what is accepted', async () => {
    const bad = await leakwatch(['run', '--response-threshold', 'soon', '--', process.execPath, '-e', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--response-threshold is "soon", which is not a duration; use milliseconds \(1000\) or a number with ms, s, m or h/);
    const unknown = await leakwatch(['run', '--frobnicate', '--', 'true']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown option --frobnicate');
    const envBad = await runCommand(process.execPath, ['--import', REGISTER, '-e', '0'], { env: { LEAKWATCH_CONNECTION_THRESHOLD: '-5s' } });
    expect(envBad.status).toBe(2);
    expect(envBad.stderr).toContain('LEAKWATCH_CONNECTION_THRESHOLD is "-5s", which is not a duration');
  });

  it('--help describes every option', async () => {
    const help = await leakwatch(['run', '--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--report', '--junit', '--html', '--summary-md', '--response-threshold', '--connection-threshold', '--metrics-port', '--no-fail']) expect(help.stdout).toContain(flag);
    expect((await leakwatch(['--help'])).stdout).toContain('leakwatch run');
  });
});

describe('leakwatch run --metrics-port', () => {
  it('serves metrics from the process that answers HTTP, not from a wrapper started first, and leaves scrapes out of the report', async () => {
    const { freePort } = await import('../../src/cli/services.js');
    const metricsPort = await freePort();
    const file = path.join(dir, 'metrics.json');
    const wrapper = `const {spawn}=require('node:child_process');const c=spawn(process.execPath,[${JSON.stringify(fixture('never-answers.mjs'))}],{stdio:'inherit'});process.on('SIGTERM',()=>c.kill('SIGTERM'));c.on('exit',()=>process.exit(0));`;
    let scraped = '';
    const exit = await leakwatch(['run', '--report', file, '--metrics-port', String(metricsPort), '--', process.execPath, '-e', wrapper], {
      env: { FIXTURE_SERVE: '1' },
      onStdout(text, child) {
        const match = /listening (\d+)/.exec(text);
        if (!match || scraped !== '') return;
        scraped = 'pending';
        void (async () => {
          await fetch(`http://127.0.0.1:${match[1]}/ok`).then((r) => r.text());
          for (let i = 0; i < 50 && scraped === 'pending'; i++) {
            scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => 'pending');
            if (scraped === 'pending') await new Promise((r) => setTimeout(r, 100));
          }
          await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
          child.kill('SIGTERM');
        })();
      },
    });
    expect(exit.status, exit.stderr).toBe(0);
    expect(scraped, scraped).toMatch(/leakwatch_http_server_responses_total\{method="GET",route="unmatched",outcome="finished"\} 1/);
    expect(exit.stderr).not.toMatch(/taken/);
    expect(readReport(file).summary.responses).toBe(1);
  });
});
