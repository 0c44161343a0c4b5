import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/core/ledger.js';
import type { ResponseProbe, ResponseRecord } from '../../src/core/records.js';
import { buildReport, type Report } from '../../src/report/json.js';
import { reportProblems } from '../../src/report/validate.js';
import { ROOT } from '../support/cli.js';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(schema);

/** A report with every kind of entry, from a ledger on a manual clock (no I/O: pure logic). */
function sampleReport(): Report {
  let now = Date.parse('2026-11-01T10:00:00Z');
  let current: ResponseRecord | undefined;
  const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/orders/42', route: () => '/orders/:id', endOverrides: () => [{ at: '/app/a.js:1:2', called: true, calledThrough: false }] };
  const ledger = new Ledger({ responseThresholdMs: 100, connectionThresholdMs: 100, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => current, clock: () => now, timer: false });
  const hung = ledger.openResponse({}, probe);
  const late = ledger.openResponse({}, probe);
  current = hung;
  const held = ledger.acquireConnection({ kind: 'pg', pool: 'db', pooled: true, stack: { stack: 'Error\n    at handler (/app/a.js:3:4)' } });
  current = undefined;
  const orphan = ledger.acquireConnection({ kind: 'redis', pool: 'cache', pooled: true });
  ledger.connectionBusy(held);
  now += 10;
  ledger.connectionIdle(held, 'idle-in-transaction');
  now += 100;
  ledger.sweep(now);
  held.server = { pid: 7, state: 'idle in transaction', stateAgeMs: 90 };
  ledger.closeResponse(late, 'finished');
  ledger.releaseConnection(orphan);
  return buildReport(ledger, now - 200, now);
}

describe('reportProblems(value)', () => {
  const sample = sampleReport();

  it('finds nothing in a report leakwatch wrote, as the JSON Schema validator does', () => {
    expect(validate(sample), ajv.errorsText(validate.errors)).toBe(true);
    expect(sample.leakedResponses).toHaveLength(1);
    expect(sample.leakedConnections).toHaveLength(1);
    expect(sample.resolved).toHaveLength(2);
    expect(reportProblems(sample)).toEqual([]);
  });

  describe.each<[string, (r: any) => unknown]>([
    ['a missing field', (r) => delete r.summary.resolved],
    ['a field of the wrong type', (r) => (r.thresholds.responseMs = '100')],
    ['an integer that is not one', (r) => (r.summary.responses = 1.5)],
    ['a value outside its enum', (r) => (r.leakedConnections[0].state = 'asleep')],
    ['a wrong constant', (r) => (r.tool.name = 'other')],
    ['a path with a query string', (r) => (r.leakedResponses[0].path = '/orders/42?token=x')],
    ['a number under its minimum', (r) => (r.leakedResponses[0].ageMs = -1)],
    ['a threshold of zero', (r) => (r.thresholds.connectionMs = 0)],
    ['a time that is not a date-time', (r) => (r.startedAt = '2026-11-01 10:00')],
    ['an unknown field', (r) => (r.leakedConnections[0].password = 'x')],
    ['an event of the wrong kind', (r) => (r.leakedResponses[0].events[0].event = 'acquired')],
    ['resolved events of neither kind', (r) => (r.resolved[0].events[0].event = 'nonsense')],
    ['eventsDropped of zero', (r) => (r.leakedConnections[0].eventsDropped = 0)],
  ])('when the report has %s', (_what, change) => {
    it('finds a problem where the JSON Schema validator does, and names where', () => {
      const broken = structuredClone(sample) as any;
      change(broken);
      expect(validate(broken)).toBe(false);
      const problems = reportProblems(broken);
      expect(problems.length).toBeGreaterThan(0);
      expect(problems[0]).toMatch(/^(\/\S*|the report) /);
    });
  });

  it('gives at most the number of problems asked for', () => {
    expect(reportProblems({}, 2)).toEqual(['the report lacks schemaVersion', 'the report lacks tool']);
  });

  describe('when the schema uses a keyword it does not know', () => {
    it('refuses, rather than pass what it cannot check', () => {
      expect(() => reportProblems(sample, 5, { ...schema, maxProperties: 3 })).toThrow(/the report schema uses maxProperties, which this check does not know/);
    });
  });
});
