import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES,
  DB_CLIENT_CONNECTIONS_LEAKED,
  DB_CLIENT_LEAKED_CONNECTIONS,
  HTTP_SERVER_LEAKED_RESPONSES,
  HTTP_SERVER_OPEN_RESPONSES,
} from '../../src/index.js';
import { readDashboard, readRules, RULES_FILE, ROOT, variableQuery, visualPanels } from './support/dashboard.js';
import { interpolate, type DashboardScope } from './support/grafana.js';
import { start, type Child } from './support/processes.js';
import { Prometheus, type PromSample } from './support/prometheus.js';
import { freePort, requireBinary, requireBuild } from './support/tools.js';

/**
 * A real Prometheus scrapes a leaky Express app run under `node --import dist/register.js`, plus
 * postgres_exporter and redis_exporter; every dashboard query and rule expression then runs
 * through Prometheus's HTTP API.
 */

const LEAKED_ORDERS = 3; // GET /orders/:id never answers
const LEAKED_REPORTS = 3; // GET /reports/:id checks out a pg client and never answers
const LEAKED_EXPORTS = 1; // GET /exports/:id answers and never releases its client
const JOB = 'leakwatch-fixture';

const children: Child[] = [];
let prometheus: Prometheus | undefined;
let instance = '';
let appPort = 0;
let traffic: NodeJS.Timeout | undefined;

function get(path: string): http.ClientRequest {
  const req = http.get({ host: '127.0.0.1', port: appPort, path, agent: false }, (res) => res.resume());
  req.on('error', () => {});
  return req;
}

const total = (samples: PromSample[]): number => samples.reduce((sum, s) => sum + Number(s.value?.[1]), 0);

const scope = (): DashboardScope => ({ job: JOB, instance, route: null, rateInterval: '4s', range: '1m', interval: '1s' });

beforeAll(async () => {
  const { register } = requireBuild();
  const binaries = {
    postgres: requireBinary('prometheus-postgres-exporter'),
    redis: requireBinary('prometheus-redis-exporter'),
  };
  requireBinary('prometheus');
  const pgUrl = process.env.LEAKWATCH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
  const [metricsPort, pgExporterPort, redisExporterPort] = [await freePort(), await freePort(), await freePort()];
  instance = `127.0.0.1:${metricsPort}`;

  const app = start('fixture app', process.execPath, ['--import', register, path.join(ROOT, 'test/metrics/fixtures/leaky-app.mjs')], {
    PORT: '0',
    PG_URL: pgUrl,
    LEAKWATCH_METRICS_PORT: String(metricsPort),
    // Far above what a healthy request takes on a loaded machine, and what the test's abort of
    // /slow (100 ms in) takes to arrive: a counter that counted one of those too would never drop.
    LEAKWATCH_RESPONSE_THRESHOLD: '1s',
    LEAKWATCH_CONNECTION_THRESHOLD: '1s',
  });
  children.push(app);
  const dsn = new URL(pgUrl);
  if (!dsn.searchParams.has('sslmode')) dsn.searchParams.set('sslmode', 'disable');
  children.push(
    start('postgres_exporter', binaries.postgres, [`--web.listen-address=127.0.0.1:${pgExporterPort}`], { DATA_SOURCE_NAME: dsn.toString() }),
    start('redis_exporter', binaries.redis, [`--redis.addr=${redisUrl}`, `--web.listen-address=127.0.0.1:${redisExporterPort}`]),
  );
  appPort = await app.waitFor((line) => (line.startsWith('{"port"') ? (JSON.parse(line) as { port: number }).port : undefined));

  prometheus = await Prometheus.start(
    [
      { name: JOB, target: instance },
      { name: 'postgres', target: `127.0.0.1:${pgExporterPort}` },
      { name: 'redis', target: `127.0.0.1:${redisExporterPort}` },
    ],
    [RULES_FILE],
  );

  // Healthy traffic all along, so that rates and quantiles have something to show.
  let n = 0;
  traffic = setInterval(() => {
    get('/health');
    get(`/items/${++n}`);
  }, 100);
  // The leaks, with query strings that must never reach a label.
  for (let i = 1; i <= LEAKED_ORDERS; i++) get(`/orders/${i}?token=hunter2`);
  for (let i = 1; i <= LEAKED_REPORTS; i++) get(`/reports/${i}?password=hunter2`);
  for (let i = 1; i <= LEAKED_EXPORTS; i++) get(`/exports/${i}`);
  const slow = get('/slow');
  setTimeout(() => slow.destroy(), 100);

  const p = prometheus;
  let read = '';
  await p.waitFor(
    'the leaks to be scraped',
    async () => {
      const responses = await p.query(`sum by (route, reason) (${HTTP_SERVER_LEAKED_RESPONSES}{job="${JOB}"})`);
      const connections = await p.query(`sum by (reason) (${DB_CLIENT_LEAKED_CONNECTIONS}{job="${JOB}"})`);
      read = [...responses, ...connections].map((s) => `${JSON.stringify(s.metric)} ${s.value?.[1]}`).join(', ') || 'no series';
      // At least: the tests below count them exactly, and name what else leaked, if anything did.
      return total(responses) >= LEAKED_ORDERS + LEAKED_REPORTS && total(connections) >= LEAKED_REPORTS + LEAKED_EXPORTS;
    },
    20_000,
    () => read,
  );
  await p.waitFor('the exporters to be scraped', async () => (await p.query('pg_up == 1 or redis_up == 1')).length === 2);
  // A few more scrapes, so that rate() over $__rate_interval has samples after the leaks.
  await new Promise((r) => setTimeout(r, 2500));
}, 60_000);

afterAll(async () => {
  clearInterval(traffic);
  await prometheus?.stop();
  await Promise.all(children.map((child) => child.stop()));
});

describe('leakwatch scraped by a real Prometheus', () => {
  it('is scraped as OpenMetrics, with exemplars that name the leaked responses', async () => {
    const p = prometheus!;
    const targets = await p.api<{ activeTargets: Array<{ labels: { job: string }; health: string; lastError: string }> }>('targets');
    const target = targets.activeTargets.find((t) => t.labels.job === JOB);
    expect(target).toMatchObject({ health: 'up', lastError: '' });
    const now = Date.now() / 1000;
    const exemplars = await p.api<Array<{ seriesLabels: Record<string, string>; exemplars: Array<{ labels: Record<string, string> }> }>>('query_exemplars', {
      query: HTTP_SERVER_LEAKED_RESPONSES,
      start: String(now - 120),
      end: String(now),
    });
    const ids = exemplars.flatMap((series) => series.exemplars.map((e) => e.labels.response_id));
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(id).toMatch(/^\d+:r\d+$/);
  });

  it('counts exactly the leaks driven, by route, and the pg connections held by leaked responses', async () => {
    const p = prometheus!;
    const leakedRoutes = await p.query(`sum by (route, reason) (${HTTP_SERVER_LEAKED_RESPONSES}{job="${JOB}"})`);
    expect(leakedRoutes.map((s) => `${s.metric.route} ${s.metric.reason} ${s.value?.[1]}`).sort()).toEqual([
      `/orders/:id unclosed ${LEAKED_ORDERS}`,
      `/reports/:id unclosed ${LEAKED_REPORTS}`,
    ]);
    expect(await p.value(`sum(${HTTP_SERVER_LEAKED_RESPONSES}{job="${JOB}", route="/orders/:id"})`)).toBe(LEAKED_ORDERS);
    expect(await p.value(`sum(${HTTP_SERVER_LEAKED_RESPONSES}{job="${JOB}", route="/reports/:id"})`)).toBe(LEAKED_REPORTS);
    expect(await p.value(`sum(${DB_CLIENT_CONNECTIONS_HELD_BY_LEAKED_RESPONSES}{job="${JOB}", db_system="postgresql"})`)).toBe(LEAKED_REPORTS);
    expect(await p.value(`sum(${DB_CLIENT_LEAKED_CONNECTIONS}{job="${JOB}", reason="held-after-response-closed"})`)).toBe(LEAKED_EXPORTS);
    expect(await p.value(`sum(${DB_CLIENT_CONNECTIONS_LEAKED}{job="${JOB}", reason="held-after-response-closed"})`)).toBe(LEAKED_EXPORTS);
    expect(await p.value(`sum(${DB_CLIENT_CONNECTIONS_LEAKED}{job="${JOB}", reason="held-by-leaked-response"})`)).toBe(LEAKED_REPORTS);
    // By route: the healthy traffic keeps running, and a scrape may catch one of its requests open.
    expect(await p.value(`sum(${HTTP_SERVER_OPEN_RESPONSES}{job="${JOB}", route=~"/orders/:id|/reports/:id"})`)).toBe(LEAKED_ORDERS + LEAKED_REPORTS);
  });

  it('keeps query strings and secrets out of every label', async () => {
    const series = await prometheus!.api<Array<Record<string, string>>>('series', { 'match[]': `{job="${JOB}"}` });
    const values = series.flatMap((s) => Object.values(s));
    expect(values.filter((v) => v.includes('?') || v.includes('hunter2'))).toEqual([]);
    const routes = new Set(series.map((s) => s.route).filter(Boolean));
    expect([...routes].sort()).toEqual(['/exports/:id', '/health', '/items/:id', '/orders/:id', '/reports/:id', '/slow']);
  });

  it('returns data for every dashboard target, with $__rate_interval, $__range and the variables substituted', async () => {
    const p = prometheus!;
    const dashboard = readDashboard();
    const empty: string[] = [];
    let count = 0;
    for (const panel of visualPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        const expr = interpolate(target.expr, dashboard, scope());
        expect(expr, `panel "${panel.title}" ${target.refId}`).not.toMatch(/\$/);
        const result = target.instant ? await p.query(expr) : await p.queryRange(expr, 20);
        count++;
        if (result.length === 0) empty.push(`panel "${panel.title}" ${target.refId}: ${expr}`);
      }
    }
    expect(empty).toEqual([]);
    expect(count).toBeGreaterThan(20);
  });

  it('returns values for every template variable query', async () => {
    const p = prometheus!;
    const dashboard = readDashboard();
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const match = /^label_values\((.*),\s*(\w+)\)$/.exec(interpolate(variableQuery(variable), dashboard, scope()));
      expect(match, `variable ${variable.name}`).not.toBeNull();
      const values = await p.api<string[]>(`label/${match![2]}/values`, { 'match[]': match![1] });
      expect(values.length, `values of variable ${variable.name}`).toBeGreaterThan(0);
    }
  });

  it('evaluates every rule without error, each expression returns data, and the leak alerts fire', async () => {
    const p = prometheus!;
    const rules = readRules();
    for (const rule of rules) {
      await p.query(rule.expr); // throws on any PromQL error
      // Without its threshold, the expression must find the series it is about.
      const reading = rule.expr.replace(/\s*(>|>=|<|<=|==|!=)\s*[\d.]+\s*$/, '');
      expect(reading, `rule ${rule.alert}`).not.toBe(rule.expr);
      expect((await p.query(reading)).length, `rule ${rule.alert}: ${reading}`).toBeGreaterThan(0);
    }
    const groups = await p.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('rules');
    const evaluated = groups.groups.flatMap((g) => g.rules);
    expect(evaluated.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert).sort());
    for (const rule of evaluated) expect(rule, rule.name).toMatchObject({ health: 'ok' });

    let alerts: Array<{ labels: Record<string, string>; state: string }> = [];
    await p.waitFor('the alerts', async () => {
      alerts = (await p.api<{ alerts: typeof alerts }>('alerts')).alerts;
      return alerts.some((a) => a.labels.alertname === 'LeakwatchPoolHeldByLeaks');
    });
    const states = alerts.map((a) => `${a.labels.alertname} ${a.labels.route ?? a.labels.reason ?? a.labels.pool} ${a.state}`).sort();
    expect(states).toEqual([
      'LeakwatchConnectionsLeaking held-after-response-closed firing',
      // Stranded now, pending for their 5 minutes.
      'LeakwatchConnectionsStranded held-after-response-closed pending',
      'LeakwatchConnectionsStranded held-by-leaked-response pending',
      // 4 of the pool's 5 connections (3 held by leaked responses, 1 after its response closed):
      // above half, pending for its 2 minutes.
      'LeakwatchPoolHeldByLeaks orders pending',
      'LeakwatchResponsesLeaking /orders/:id firing',
      'LeakwatchResponsesLeaking /reports/:id firing',
    ]);
  });
});
