import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import type { Ledger } from '../../src/core/ledger.js';
import type { ConnectionRecord } from '../../src/core/records.js';
import type { Report } from '../../src/report/json.js';
import { reportOf } from '../support/leaks.js';
import { ROOT } from '../support/cli.js';

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8')));

/** The report of the ledger now, checked against the schema. */
export function validReport(ledger: Ledger): Report {
  const report = reportOf(ledger);
  expect(validate(report), ajv.errorsText(validate.errors)).toBe(true);
  return report;
}

/** Matches `file:line:column` of the one line of a fixture that contains `text`, for acquisition sites. */
export function lineOf(fixture: string, text: string): RegExp {
  const file = path.join(ROOT, 'fixtures', fixture);
  const lines = readFileSync(file, 'utf8').split('\n');
  const found = lines.flatMap((l, i) => (l.includes(text) ? [i + 1] : []));
  if (found.length !== 1) throw new Error(`${fixture} has ${found.length} lines with ${text}, not one`);
  return new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${found[0]}:\\d+$`);
}

/** Connections the ledger holds now for the pool named `pool`. */
export function heldIn(ledger: Ledger, pool: string): ConnectionRecord[] {
  return [...ledger.held].filter((c) => c.pool === pool);
}
