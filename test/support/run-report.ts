import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../../src/report/json.js';
import { leakwatch, type Exit } from './cli.js';
import { expectValidReport } from './report-schema.js';

/**
 * `leakwatch run --report FILE --response-threshold 300ms --connection-threshold 300ms -- node ARGS`
 * to its end, with the report it wrote (in a temporary folder of its own), checked against the schema.
 */
export async function runWithReport(nodeArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit & { report: Report }> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'leakwatch-run-')), 'report.json');
  const exit = await leakwatch(['run', '--report', file, '--response-threshold', '300ms', '--connection-threshold', '300ms', '--', process.execPath, ...nodeArgs], { env });
  const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
  expectValidReport(report);
  return { ...exit, report };
}
