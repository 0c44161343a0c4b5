import fs from 'node:fs';
import http from 'node:http';
import express from 'express';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, instrumentPg, start, type Started } from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { closeActivityReaders } from '../../src/pg/index.js';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { readRules, RULES_FILE, RULES_TEST_FILE } from './support/dashboard.js';
import { requireBinary, run } from './support/tools.js';

/** promtool, Prometheus's own checker, on the shipped rules, their unit tests, and leakwatch's exposition. */

let promtool: string;
beforeAll(() => {
  promtool = requireBinary('promtool');
});

describe('dashboards/leakwatch.rules.yml', () => {
  it('passes promtool check rules', () => {
    const result = run(promtool, ['check', 'rules', RULES_FILE]);
    expect(result.stderr + result.stdout).toContain(`SUCCESS: ${readRules().length} rules found`);
    expect(result.status).toBe(0);
  });

  it('passes its promtool unit tests', () => {
    const result = run(promtool, ['test', 'rules', RULES_TEST_FILE]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('has a firing and a quiet unit test for every alert', () => {
    const tests = fs.readFileSync(RULES_TEST_FILE, 'utf8');
    const cases = [...tests.matchAll(/alertname: (\w+)\n\s+exp_alerts:( \[\])?/g)].map((m) => ({ alert: m[1], quiet: m[2] !== undefined }));
    for (const rule of readRules()) {
      expect(cases.filter((c) => c.alert === rule.alert && !c.quiet), `firing case of ${rule.alert}`).not.toHaveLength(0);
      expect(cases.filter((c) => c.alert === rule.alert && c.quiet), `quiet case of ${rule.alert}`).not.toHaveLength(0);
    }
  });

  it('gives every alert a severity and a summary and description', () => {
    for (const rule of readRules()) {
      expect(rule.alert, rule.expr).toMatch(/^Leakwatch[A-Z]\w+$/);
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary?.length ?? 0, rule.alert).toBeGreaterThan(20);
      expect(rule.annotations?.description?.length ?? 0, rule.alert).toBeGreaterThan(100);
    }
  });

  it('fails promtool check rules for a broken expression (the check can fail)', () => {
    const broken = fs.readFileSync(RULES_FILE, 'utf8').replace('> 600', '> > 600');
    const file = `${RULES_FILE}.broken-${process.pid}.yml`;
    fs.writeFileSync(file, broken);
    try {
      expect(run(promtool, ['check', 'rules', file]).status).not.toBe(0);
    } finally {
      fs.rmSync(file);
    }
  });
});

describe("leakwatch's exposition", () => {
  let started: Started;
  let undoPg: () => void;
  beforeAll(() => {
    started = start({ responseThreshold: 200, connectionThreshold: 200 });
    undoPg = instrumentPg(pg);
  });
  afterAll(() => {
    undoPg();
    started.stop();
    closeActivityReaders();
  });

  it('passes promtool check metrics in the Prometheus text format and in OpenMetrics, with every family written', async () => {
    const metrics = createMetrics();
    const pool = new pg.Pool({ connectionString: process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test', max: 3 });
    const stranded: pg.PoolClient[] = [];
    const app = express();
    app.get('/ok/:id', async (_req, res) => {
      const client = await pool.connect();
      await client.query('SELECT 1');
      client.release();
      res.send('ok');
    });
    app.get('/leak/:id', async () => {
      const client = await pool.connect();
      stranded.push(client);
      await client.query('SELECT 1');
    });
    const server = http.createServer(app);
    const port = await listen(server);
    await request(port, '/ok/1');
    const hanging = fireAndForget(port, '/leak/1');
    await waitUntil(() => getRuntime()!.ledger.totals.leakedConnections === 1, 3000, 'the leak');

    for (const accept of ['text/plain; version=0.0.4', 'application/openmetrics-text; version=1.0.0']) {
      const { body } = await metrics.scrape(accept);
      for (const family of ['open_responses', 'oldest_open_response_start_timestamp_seconds', 'responses_total', 'leaked_responses_total', 'response_duration_seconds_bucket']) {
        expect(body).toMatch(new RegExp(`^leakwatch_http_server_${family}[{ ]`, 'm'));
      }
      const dbFamilies = [
        'connections',
        'connections_max',
        'connections_held_by_leaked_responses',
        'connections_leaked',
        'leaked_connections_total',
        'connection_use_duration_seconds_bucket',
        'connection_pending_requests',
        'connection_wait_duration_seconds_bucket',
        'connection_waits_total',
        'pool_exhaustions_total',
        'pool_exhausted',
      ];
      for (const family of dbFamilies) expect(body).toMatch(new RegExp(`^leakwatch_db_client_${family}[{ ]`, 'm'));
      // promtool reads the text format's grammar, which has no exemplars; it still sees every family's
      // HELP and TYPE, and so a second family of one name. (The e2e test has Prometheus parse OpenMetrics.)
      const withoutExemplars = body.replace(/ # \{[^}]*\} \S+(?: \S+)?$/gm, '');
      const result = run(promtool, ['check', 'metrics'], { input: withoutExemplars });
      const problems = (result.stdout + result.stderr).split('\n').filter((line) => line !== '');
      if (accept.startsWith('text/plain')) {
        expect(problems, accept).toEqual([]);
        expect(result.status).toBe(0);
      } else {
        // OpenMetrics names a counter's family without _total; read as the text format, its samples then lack HELP. Nothing else.
        expect(problems.filter((line) => !/^leakwatch_\w+_total no help text$/.test(line)), accept).toEqual([]);
      }
    }

    // The check can fail: a counter without its _total suffix is a lint error; and in OpenMetrics a
    // gauge named as a counter's family (its name without _total) is a second family of that name.
    const bad = run(promtool, ['check', 'metrics'], { input: '# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n' });
    expect(bad.status).not.toBe(0);
    const clash = '# HELP x Exhaustions.\n# TYPE x counter\nx_total 1\n# HELP x Exhausted now.\n# TYPE x gauge\nx 1\n# EOF\n';
    expect(run(promtool, ['check', 'metrics'], { input: clash }).status).not.toBe(0);

    hanging.destroy();
    for (const client of stranded) client.release(true);
    await pool.end();
    await close(server);
    metrics.close();
  });
});
