import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentPg, start, type Started } from '../../src/index.js';
import { closeActivityReaders } from '../../src/pg/index.js';
import { buildReport, mergeReports, type Report, type TimelineEvent } from '../../src/report/json.js';
import { ROOT } from '../support/cli.js';
import { close, fireAndForget, listen, request, sleep, waitUntil } from '../support/http.js';
import { getRuntime } from '../support/internals.js';

const pgUrl = process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, 'schema/report.schema.json'), 'utf8')));

let started: Started;
let undoPg: () => void;
let server: http.Server;
let pool: pg.Pool;
const kept: pg.PoolClient[] = [];
const hanging: http.ClientRequest[] = [];
let report: Report;

const names = (events: TimelineEvent[] | undefined) => (events ?? []).map((e) => e.event);
const times = (events: TimelineEvent[] | undefined) => (events ?? []).map((e) => Date.parse(e.at));

beforeAll(async () => {
  started = start({ responseThreshold: 250, connectionThreshold: 250 });
  undoPg = instrumentPg(pg);
  pool = new pg.Pool({ connectionString: pgUrl, max: 4, leakwatchName: 'events-db' });
  server = http.createServer(async (req, res) => {
    if (req.url === '/hang') return; // never answers
    if (req.url === '/late') return void setTimeout(() => res.end('late'), 450); // reported, then resolved
    const client = await pool.connect();
    kept.push(client);
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
  const ledger = getRuntime()!.ledger;
  await waitUntil(() => ledger.totals.leakedConnections === 2 && ledger.totals.resolved === 1, 5000, 'the leaks');
  await waitUntil(() => [...ledger.held].every((c) => c.server?.state != null), 4000, "the server's view of the connections");
  report = buildReport(ledger, ledger.now());
});

afterAll(async () => {
  for (const req of hanging) req.destroy();
  for (const client of kept) client.release(true);
  await pool.end();
  await close(server);
  undoPg();
  started.stop();
  closeActivityReaders();
});

describe('buildReport(ledger) › events', () => {
  it('validates against the schema', () => {
    expect(validate(report), ajv.errorsText(validate.errors)).toBe(true);
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
