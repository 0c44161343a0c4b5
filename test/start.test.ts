import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, start } from '../src/index.js';
import { ROOT, runCommand } from './support/cli.js';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(schema);

// An app that calls start() itself (no --import), answers /ok, never answers /hang, and ends once
// both were asked. START_OPTIONS is the JSON of start()'s options.
const APP = `
const http = require('node:http');
const { start } = require(${JSON.stringify(path.join(ROOT, 'dist/index.js'))});
start(process.env.START_OPTIONS ? JSON.parse(process.env.START_OPTIONS) : undefined);
start(); // a second call (a library's, a test setup's) changes nothing
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/hang')) return;
  res.end('ok');
});
server.listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  await fetch(base + '/ok');
  http.get(base + '/hang?token=secret').on('error', () => {});
  setTimeout(() => process.exit(0), 100);
});
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-start-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runApp(env: NodeJS.ProcessEnv) {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(clean)) if (key.startsWith('LEAKWATCH_') || key === 'NODE_OPTIONS') delete clean[key];
  return runCommand(process.execPath, ['-e', APP], { env: { ...clean, ...env }, timeoutMs: 15_000 });
}

function readReport(file: string) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  expect(validate(report), ajv.errorsText(validate.errors)).toBe(true);
  return report;
}

describe('start()', () => {
  describe('when LEAKWATCH_REPORT is set', () => {
    it("writes the process's report there at exit, with the response it left open", async () => {
      const file = path.join(dir, 'env', 'report.json');
      const exit = await runApp({ LEAKWATCH_REPORT: file, LEAKWATCH_LOG: 'off' });
      expect(exit.stderr).toBe('');
      expect(exit.status).toBe(0);
      const report = readReport(file);
      expect(report.summary).toMatchObject({ responses: 2, leakedResponses: 1 });
      expect(report.leakedResponses).toEqual([expect.objectContaining({ method: 'GET', path: '/hang', reason: 'open-at-exit' })]);
      expect(report.processes).toEqual([expect.objectContaining({ pid: expect.any(Number) })]);
      expect(JSON.stringify(report)).not.toContain('secret');
    });
  });

  describe('when given a report option', () => {
    it('writes the report to that file, over LEAKWATCH_REPORT', async () => {
      const file = path.join(dir, 'option.json');
      const ignored = path.join(dir, 'ignored.json');
      const exit = await runApp({ START_OPTIONS: JSON.stringify({ report: file }), LEAKWATCH_REPORT: ignored, LEAKWATCH_LOG: 'off' });
      expect(exit.status).toBe(0);
      expect(readReport(file).leakedResponses).toHaveLength(1);
      expect(() => readFileSync(ignored)).toThrow(/ENOENT/);
    });
  });

  describe('when a LEAKWATCH_ variable is misspelt', () => {
    it('warns once, naming the variable it probably meant, and runs on', async () => {
      const exit = await runApp({ LEAKWATCH_RESPONSE_TRESHOLD: '5s', LEAKWATCH_SOMETHING_ELSE: '1', LEAKWATCH_LOG: 'off' });
      expect(exit.status).toBe(0);
      expect(exit.stderr.split('\n').filter(Boolean)).toEqual([
        '[leakwatch] LEAKWATCH_RESPONSE_TRESHOLD is not a leakwatch variable and is ignored; did you mean LEAKWATCH_RESPONSE_THRESHOLD?',
        '[leakwatch] LEAKWATCH_SOMETHING_ELSE is not a leakwatch variable and is ignored.',
      ]);
    });
  });

  describe('when given an option it does not know', () => {
    it('throws a ConfigError naming the option and the one it probably meant', () => {
      expect(() => start({ responseTreshold: '5s' } as never)).toThrow(ConfigError);
      expect(() => start({ responseTreshold: '5s' } as never)).toThrow('option responseTreshold is not a leakwatch option; did you mean responseThreshold?');
    });
  });
});
