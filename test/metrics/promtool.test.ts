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

  it('passes promtool check metrics, with every family written', async () => {
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

    const { body } = await metrics.scrape('text/plain; version=0.0.4');
    for (const family of ['open_responses', 'oldest_open_response_start_timestamp_seconds', 'responses_total', 'leaked_responses_total', 'response_duration_seconds_bucket']) {
      expect(body).toMatch(new RegExp(`^leakwatch_http_server_${family}[{ ]`, 'm'));
    }
    for (const family of ['connections', 'connections_max', 'connections_held_by_leaked_responses', 'connections_leaked', 'leaked_connections_total', 'connection_use_duration_seconds_bucket', 'connection_pending_requests']) {
      expect(body).toMatch(new RegExp(`^leakwatch_db_client_${family}[{ ]`, 'm'));
    }
    const result = run(promtool, ['check', 'metrics'], { input: body });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);

    // The check can fail: a counter without its _total suffix is a lint error.
    const bad = run(promtool, ['check', 'metrics'], { input: '# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n' });
    expect(bad.status).not.toBe(0);

    hanging.destroy();
    for (const client of stranded) client.release(true);
    await pool.end();
    await close(server);
    metrics.close();
  });
});
