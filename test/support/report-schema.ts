import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { ROOT } from './cli.js';

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8')));

/** Fails the test, with every error ajv finds, unless `report` matches schema/report.schema.json. */
export function expectValidReport(report: unknown): void {
  expect(validate(report), ajv.errorsText(validate.errors)).toBe(true);
}
