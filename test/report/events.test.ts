import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, mergeReports, type Report, type TimelineEvent } from '../../src/report/json.js';
import { close, fireAndForget, listen, request, sleep, waitUntil } from '../support/http.js';
import { expectValidReport } from '../support/report-schema.js';
import { useLeakwatchAndPool } from '../pg/support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 250, connectionThreshold: 250 }, { leakwatchName: 'events-db' });
let server: http.Server;
const hanging: http.ClientRequest[] = [];
let report: Report;

const names = (events: TimelineEvent[] | undefined) => (events ?? []).map((e) => e.event);
const times = (events: TimelineEvent[] | undefined) => (events ?? []).map((e) => Date.parse(e.at));

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    if (req.url === '/hang') return; // never answers
    if (req.url === '/late') return void setTimeout(() => res.end('late'), 450); // reported, then resolved
    const client = await setup.pool.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1');
    if (req.url === '/slow') await sleep(300); // the client has gone by then
    res.end('done'); // never COMMIT, never released
  });
  const port = await listen(server);
  hanging.push(fireAndForget(port, '/hang'));
  expect(await request(port, '/tx')).toMatchObject({ status: 200 });
  expect(await request(port, '/slow', { abortAfterMs: 100 })).toBe('aborted');
  expect(await request(port, '/late')).toMatchObject({ status: 200 });
  const { ledger } = setup;
  await waitUntil(() => ledger.totals.leakedConnections === 2 && ledger.totals.resolved === 1, 5000, 'the leaks');
  await waitUntil(() => [...ledger.held].every((c) => c.server?.state != null), 4000, "the server's view of the connections");
  report = buildReport(ledger, ledger.now());
});

afterAll(async () => {
  for (const req of hanging) req.destroy();
  await close(server);
});

describe('buildReport(ledger) › events', () => {
  it('validates against the schema', () => {
    expectValidReport(report);
  });

  describe('when a response never answers', () => {
    it('gives it a timeline from its start to the moment it was reported, in time order', () => {
      const hung = report.leakedResponses.find((r) => r.path === '/hang')!;
      expect(names(hung.events)).toEqual(['started', 'leaked']);
      const [startedAt, leakedAt] = times(hung.events);
      expect(leakedAt - startedAt).toBeGreaterThanOrEqual(250);
    });
  });

  describe('when a connection is kept in a transaction after its response finished', () => {
    it("gives it each state it entered, the server's answer, and its owner's timeline", () => {
      const tx = report.leakedConnections.find((c) => c.ownerPath === '/tx')!;
      expect(names(tx.events)).toEqual(['acquired', 'idle', 'busy', 'idle-in-transaction', 'busy', 'idle-in-transaction', 'leaked', 'confirmed']);
      expect(times(tx.events)).toEqual([...times(tx.events)].sort((a, b) => a - b));
      expect(names(tx.ownerEvents)).toEqual(['started', 'finished']);
      expect(tx.eventsDropped).toBeUndefined();
    });
  });

  describe('when the client of a request that holds a connection goes away', () => {
    it('shows the abort in the owner timeline, a connection threshold before the leak', () => {
      const slow = report.leakedConnections.find((c) => c.ownerPath === '/slow')!;
      expect(names(slow.ownerEvents)).toEqual(['started', 'aborted']);
      const abortedAt = times(slow.ownerEvents)[1];
      const leakedAt = Date.parse(slow.events!.find((e) => e.event === 'leaked')!.at);
      expect(leakedAt - abortedAt).toBeGreaterThanOrEqual(250);
    });
  });

  describe('when a response finishes after it was reported', () => {
    it('lists it resolved, with its route and its timeline', () => {
      expect(report.resolved).toEqual([expect.objectContaining({ kind: 'response', what: 'GET /late', route: null })]);
      expect(names(report.resolved[0].events)).toEqual(['started', 'leaked', 'finished']);
    });
  });
});

describe('mergeReports(parts)', () => {
  it('keeps the events of every part', () => {
    const merged = mergeReports([report, report], { startedAt: 0, endedAt: 1, responseMs: 1, connectionMs: 1 });
    expect(merged.leakedConnections.map((c) => c.events)).toEqual([...report.leakedConnections, ...report.leakedConnections].map((c) => c.events));
    expect(merged.resolved[1].events).toEqual(report.resolved[0].events);
  });
});
