import http from 'node:http';
import express from 'express';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, type Report } from '../../src/report/json.js';
import { formatJunit } from '../../src/report/junit.js';
import { formatReport } from '../../src/report/text.js';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { useLeakwatchAndPool } from '../pg/support.js';

interface TestCase {
  '@_name': string;
  '@_classname': string;
  failure?: { '@_message': string; '#text': string };
}

const setup = useLeakwatchAndPool({ responseThreshold: 200, connectionThreshold: 200 }, { leakwatchName: 'orders-db' });
let server: http.Server;
const hanging: http.ClientRequest[] = [];
let report: Report;

/** The test cases of the JUnit file `leakwatch run --junit` would write for `report`. */
function casesOf(report: Report): TestCase[] {
  const xml = new XMLParser({ ignoreAttributes: false, alwaysCreateTextNode: true }).parse(formatJunit(report));
  const cases = xml.testsuites.testsuite.testcase;
  return Array.isArray(cases) ? cases : [cases];
}

beforeAll(async () => {
  const app = express();
  app.get('/orders/:id', () => {
    // never answers
  });
  app.get('/exports/:id', async (_req, res) => {
    const client = await setup.pool.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1');
    res.end('exported'); // never COMMIT, never released
  });
  server = http.createServer(app);
  const port = await listen(server);
  hanging.push(fireAndForget(port, '/orders/abc?token=x'), fireAndForget(port, '/orders/def'));
  expect(await request(port, '/exports/9')).toMatchObject({ status: 200 });
  const { ledger } = setup;
  await waitUntil(() => ledger.totals.leakedResponses === 2 && ledger.totals.leakedConnections === 1, 4000, 'the leaks');
  await waitUntil(() => [...ledger.held].some((c) => c.server?.state != null), 4000, "the server's view of the connection");
  report = buildReport(ledger, ledger.now());
});

afterAll(async () => {
  for (const req of hanging) req.destroy();
  await close(server);
});

describe('formatJunit(report)', () => {
  describe('when responses on one route leak with different paths', () => {
    it('names each test case by the route template, the same in every run, with the concrete path in the failure', () => {
      const cases = casesOf(report).filter((c) => c['@_classname'] === 'leakwatch.responses');
      expect(cases.map((c) => c['@_name'])).toEqual(['GET /orders/:id unclosed', 'GET /orders/:id unclosed']);
      expect(cases.map((c) => c.failure?.['@_message']).sort()).toEqual(['GET /orders/abc: unclosed', 'GET /orders/def: unclosed']);
      expect(cases.map((c) => c.failure?.['#text']).join('\n')).toContain('GET /orders/abc (route /orders/:id)');
      expect(formatJunit(report)).not.toContain('token');
    });
  });

  describe('when a connection is stranded after its response closed', () => {
    it("names the test case by its pool and its owner's method and route, with the path and the server's view in the failure", () => {
      const [connection] = casesOf(report).filter((c) => c['@_classname'] === 'leakwatch.connections');
      expect(connection['@_name']).toBe('pg orders-db held-after-response-closed (GET /exports/:id)');
      expect(connection.failure?.['#text']).toMatch(/owned by \d+:r\d+, GET \/exports\/9 \(route \/exports\/:id\), closed/);
      expect(connection.failure?.['#text']).toMatch(/server says: pid \d+, idle in transaction for \d+ ms/);
    });
  });
});

describe('formatReport(report)', () => {
  it("shows a connection's owner by method, path and route", () => {
    expect(formatReport(report)).toMatch(
      /pg \d+:pg\d+ on orders-db: idle-in-transaction for \d+ ms, held \d+ ms \[held-after-response-closed\]\n\s+owned by \d+:r\d+, GET \/exports\/9 \(route \/exports\/:id\), closed\n\s+server says: pid \d+, idle in transaction for \d+ ms/,
    );
  });
});

describe('buildReport(ledger)', () => {
  it("gives a connection its owner's method", () => {
    expect(report.leakedConnections).toEqual([expect.objectContaining({ ownerMethod: 'GET', ownerPath: '/exports/9', ownerRoute: '/exports/:id', ownerState: 'closed' })]);
  });
});
