import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DB_CLIENT_CONNECTION_PENDING_REQUESTS,
  DB_CLIENT_CONNECTION_WAIT_DURATION,
  DB_CLIENT_CONNECTIONS,
  DB_CLIENT_CONNECTIONS_MAX,
  DB_CLIENT_CONNECTION_WAITS,
  DB_CLIENT_POOL_EXHAUSTED,
  DB_CLIENT_POOL_EXHAUSTIONS,
  type Holder,
  type HoldersSnapshot,
} from '../../src/index.js';
import { sleep, waitUntil } from '../support/http.js';
import { readRules, RULES_FILE } from '../metrics/support/dashboard.js';
import { start, type Child } from '../metrics/support/processes.js';
import { find, scrape, valueOf } from '../metrics/support/scrape.js';
import { requireBinary, requireBuild, run } from '../metrics/support/tools.js';

/**
 * The acceptance of issue 16, once per kind of pool, against the real PostgreSQL and Redis: a pool
 * of max 3 (pg's Pool, knex's tarn, a node-redis client pool) in fixtures/pool-exhaustion-app.mjs,
 * run under `node --import dist/register.js`, exhausted by three requests that hold their
 * connection (one idle, one in a transaction or subscribed, one in pg_sleep or BLPOP) and four that
 * wait. The API, the endpoint and the signal each show the holders and the waiters; one exhaustion
 * line is logged; the wait metrics move; the alert fires on the series the app wrote.
 */

const FIXTURE = 'pool-exhaustion-app.mjs';
// Planted where each could leak: the URL's query, SQL parameter and Redis argument values, the database password.
const SECRET = /hunter2/;

const pgUrl = (() => {
  const url = new URL(process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test');
  url.password = 'hunter2-password'; // the test server trusts local connections: never sent, only carried
  return url.toString();
})();
const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const pgPoolName = (() => {
  const url = new URL(pgUrl);
  return `${url.hostname}:${url.port || 5432}${url.pathname}`;
})();

interface Library {
  name: string;
  env: string;
  dbSystem: 'postgresql' | 'redis';
  pool: string;
  /** The state of each holder, by route. */
  states: Record<string, Holder['state']>;
  /** A waiter names where it asked; not where the library's own query checkout captures no stack (knex). */
  waiterSite: boolean;
}

const LIBRARIES: Library[] = [
  {
    name: "pg's Pool",
    env: 'pg',
    dbSystem: 'postgresql',
    pool: 'orders',
    states: { '/hold/idle': 'idle', '/hold/transaction': 'idle-in-transaction', '/hold/sleep': 'busy' },
    waiterSite: true,
  },
  {
    name: 'knex (tarn)',
    env: 'knex',
    dbSystem: 'postgresql',
    pool: pgPoolName,
    states: { '/hold/idle': 'idle', '/hold/transaction': 'idle-in-transaction', '/hold/sleep': 'busy' },
    waiterSite: false,
  },
  {
    name: 'a node-redis pool',
    env: 'node-redis',
    dbSystem: 'redis',
    pool: `${new URL(redisUrl).hostname}:${new URL(redisUrl).port || 6379}/0`,
    states: { '/hold/idle': 'idle', '/hold/transaction': 'subscriber', '/hold/sleep': 'busy' },
    waiterSite: true,
  },
];

/** `file:line:column` of the line where the fixture's code for `library` asks for a connection on `route`. */
function siteOf(library: Library, route: string): RegExp {
  const source = fs.readFileSync(path.join(__dirname, '../../fixtures', FIXTURE), 'utf8');
  const section = source.indexOf(`async function ${{ pg: 'pgPool', knex: 'knexPool', 'node-redis': 'nodeRedisPool' }[library.env]}(`);
  const method = { '/hold/idle': 'holdIdle', '/hold/transaction': 'holdTransaction', '/hold/sleep': 'holdSleep', '/wait/:n': 'wait' }[route]!;
  const start = source.indexOf(`async ${method}(`, section);
  const line = source.slice(0, start).split('\n').length + 1; // the first line of the method's body asks
  return new RegExp(`${path.join(__dirname, '../../fixtures', FIXTURE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+$`);
}

const get = (url: string, accept?: string) => scrape(url, accept);

describe.each(LIBRARIES)('a pool of max 3 exhausted through $name', (library) => {
  let app: Child;
  let base = '';
  let metricsBase = '';
  let first: HoldersSnapshot;
  const outputs: Record<string, string> = {};

  const api = async (): Promise<HoldersSnapshot> => JSON.parse((await get(`${base}/api/holders`)).body) as HoldersSnapshot;
  const poolOf = (snapshot: HoldersSnapshot) => snapshot.pools.find((p) => p.pool === library.pool && p.dbSystem === library.dbSystem);

  beforeAll(async () => {
    const { register } = requireBuild();
    app = start(`${library.env} app`, process.execPath, ['--import', register, path.join(__dirname, '../../fixtures', FIXTURE)], {
      LIBRARY: library.env,
      PG_URL: pgUrl,
      REDIS_URL: redisUrl,
      PORT: '0',
      LEAKWATCH_METRICS_PORT: '0',
      LEAKWATCH_HOLDERS_SIGNAL: 'SIGUSR2',
      LEAKWATCH_LOG: 'text', // the suite turns it off
      SLEEP_SECONDS: '6',
    });
    const port = await app.waitFor((line) => (line.startsWith('{"port"') ? (JSON.parse(line) as { port: number }).port : undefined));
    base = `http://127.0.0.1:${port}`;
    metricsBase = await app.waitFor((line) => /metrics at (http:\/\/\S+)\/metrics/.exec(line)?.[1]);
    for (const route of ['idle', 'transaction', 'sleep']) void get(`${base}/hold/${route}?token=hunter2-query`).catch(() => {});
    let snapshot: HoldersSnapshot | undefined;
    const until = Date.now() + 10_000;
    for (;;) {
      snapshot = await api();
      const holders = poolOf(snapshot)?.holders ?? [];
      if (holders.length === 3 && holders.every((h) => h.state === library.states[h.owner?.route ?? ''])) break;
      if (Date.now() > until) throw new Error(`the three holders never showed:\n${JSON.stringify(snapshot, null, 2)}\n${app.output}`);
      await sleep(50);
    }
    for (let n = 1; n <= 4; n++) void get(`${base}/wait/${n}?token=hunter2-query`).catch(() => {});
    for (;;) {
      first = await api();
      if ((poolOf(first)?.waiters.length ?? 0) === 4) break;
      if (Date.now() > until) throw new Error(`the four waiters never showed:\n${JSON.stringify(first, null, 2)}`);
      await sleep(20);
    }
    outputs.api = JSON.stringify(first);
  }, 30_000);

  afterAll(async () => {
    await app?.stop();
  });

  it('the API lists the three holders, longest held first, with their state, route and app line, and the server pid for pg', () => {
    const pool = poolOf(first)!;
    expect(pool).toMatchObject({ kind: library.dbSystem === 'redis' ? 'redis' : 'pg', counts: { max: 3, used: 3, idle: 0 }, holdersLeftOut: 0 });
    expect(pool.holders.map((h) => h.heldMs)).toEqual([...pool.holders.map((h) => h.heldMs)].sort((a, b) => b - a));
    for (const holder of pool.holders) {
      const route = holder.owner!.route!;
      expect(holder, route).toMatchObject({ state: library.states[route], pooled: true, leak: null, owner: { method: 'GET', state: 'open', path: route } });
      expect(holder.acquisitionSite, route).toMatch(siteOf(library, route));
      if (holder.state !== 'busy') expect(holder.idleMs).toBeGreaterThan(0);
      if (library.dbSystem === 'postgresql') expect(holder.server?.pid).toBeGreaterThan(0);
    }
    expect(pool.holders.map((h) => h.owner!.route).sort()).toEqual(['/hold/idle', '/hold/sleep', '/hold/transaction']);
  });

  it('the API lists the four waiters beneath, with their route and growing wait times', async () => {
    const waiters = poolOf(first)!.waiters;
    expect(waiters.map((w) => w.owner?.route)).toEqual(['/wait/:n', '/wait/:n', '/wait/:n', '/wait/:n']);
    expect(waiters.map((w) => w.owner?.path).sort()).toEqual(['/wait/1', '/wait/2', '/wait/3', '/wait/4']);
    for (const waiter of waiters) {
      if (!library.waiterSite) expect(waiter.requestSite).toBeNull();
      else expect(waiter.requestSite).toMatch(siteOf(library, '/wait/:n'));
    }
    await sleep(300);
    const later = poolOf(await api())!.waiters;
    expect(later).toHaveLength(4);
    const byId = new Map(waiters.map((w) => [w.owner!.id, w.waitedMs]));
    for (const waiter of later) expect(waiter.waitedMs, waiter.owner!.id).toBeGreaterThanOrEqual(byId.get(waiter.owner!.id)! + 250);
  });

  it('GET /leakwatch/holders answers the same as JSON, and as a text table for text/plain or ?format=text', async () => {
    const json = await get(`${metricsBase}/leakwatch/holders`);
    expect(json.contentType).toBe('application/json; charset=utf-8');
    outputs.endpointJson = json.body;
    const pool = poolOf(JSON.parse(json.body) as HoldersSnapshot)!;
    expect(pool.holders.map((h) => [h.connection, h.state, h.owner?.route, h.acquisitionSite])).toEqual(
      poolOf(first)!.holders.map((h) => [h.connection, h.state, h.owner?.route, h.acquisitionSite]),
    );
    expect(pool.waiters.map((w) => w.owner?.id).sort()).toEqual(poolOf(first)!.waiters.map((w) => w.owner?.id).sort());

    for (const [url, accept] of [
      [`${metricsBase}/leakwatch/holders?format=text`, undefined],
      [`${metricsBase}/leakwatch/holders`, 'text/plain'],
    ] as const) {
      const text = await get(url, accept);
      expect(text.contentType).toBe('text/plain; charset=utf-8');
      outputs[`endpointText ${accept}`] = text.body;
      expect(text.body).toMatch(new RegExp(`^${library.dbSystem} ${library.pool.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 3 of max 3 used, 0 idle, 4 queued; 3 held, 4 waiting`, 'm'));
      for (const holder of pool.holders) {
        expect(text.body).toMatch(new RegExp(`\\s${holder.state}\\s+${holder.connection}\\s.*GET ${holder.owner!.route} open`));
      }
      expect(text.body.match(/GET \/wait\/:n \(path \/wait\/\d\) open/g)).toHaveLength(4);
    }
  });

  it('the holders signal (SIGUSR2) writes the same table to the log', async () => {
    const before = app.output.length;
    app.process.kill('SIGUSR2');
    await waitUntil(() => /waiting:\n(?:.*\n){5}/.test(app.output.slice(before)), 5000, 'the table on stderr');
    const written = app.output.slice(before);
    outputs.signal = written;
    expect(written).toMatch(/\[leakwatch\] leakwatch holders of pid \d+ at /);
    for (const holder of poolOf(first)!.holders) {
      expect(written).toMatch(new RegExp(`\\[leakwatch\\]\\s+\\S+ m?s\\s+(?:\\S+ m?s|-)\\s+${holder.state}\\s+${holder.connection}\\s.*GET ${holder.owner!.route} open`));
    }
    expect(written.match(/\[leakwatch\] .*GET \/wait\/:n \(path \/wait\/\d\) open/g)).toHaveLength(4);
    expect(app.process.exitCode).toBeNull(); // the listener replaced the signal's default (ending the process)
  });

  it('logs one exhaustion line, naming the holders and the waiting route, and no second within the interval', async () => {
    await waitUntil(() => app.output.includes('pool exhausted:'), 5000, 'the exhaustion line').catch((error: Error) => {
      throw new Error(`${error.message}:\n${app.output}`);
    });
    await sleep(2500); // two more thresholds of exhaustion: still one line (one a minute)
    const lines = app.output.split('\n').filter((line) => line.includes('pool exhausted'));
    outputs.exhaustion = lines.join('\n');
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toContain(`[leakwatch] pool exhausted: ${library.dbSystem} ${library.pool} has had checkouts waiting with no idle connection for `);
    expect(line).toContain('(3 of max 3 used, 0 idle, 4 queued; 4 waiting, longest');
    expect(line).toContain(': 4 × GET /wait/:n)');
    for (const holder of poolOf(first)!.holders) {
      expect(line).toMatch(new RegExp(`${holder.connection} ${holder.state}.* by \\S+ GET ${holder.owner!.route} open .*acquired at ${siteOf(library, holder.owner!.route!).source.slice(0, -1)}`));
    }
  });

  it('counts the four waits and the exhaustion, times every wait, and the alert fires on the series the app wrote', async () => {
    const labels = { db_system: library.dbSystem, pool: library.pool };
    const exhausted: string[] = [];
    let body = '';
    for (let i = 0; i < 6; i++) {
      body = (await get(`${metricsBase}/metrics`)).body;
      exhausted.push(String(valueOf(body, DB_CLIENT_POOL_EXHAUSTED, labels)));
      await sleep(150);
    }
    expect(exhausted).toEqual(['1', '1', '1', '1', '1', '1']);
    expect(valueOf(body, DB_CLIENT_CONNECTION_WAITS, labels)).toBe(4);
    expect(valueOf(body, DB_CLIENT_POOL_EXHAUSTIONS, labels)).toBe(1);
    // What the pool pressure row draws: used against max, and the queue.
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...labels, state: 'used' })).toBe(3);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS, { ...labels, state: 'idle' })).toBe(0);
    expect(valueOf(body, DB_CLIENT_CONNECTIONS_MAX, labels)).toBe(3);
    expect(valueOf(body, DB_CLIENT_CONNECTION_PENDING_REQUESTS, labels)).toBe(4);
    const servedBefore = valueOf(body, `${DB_CLIENT_CONNECTION_WAIT_DURATION}_count`, labels)!;
    const overOneBefore = servedBefore - valueOf(body, `${DB_CLIENT_CONNECTION_WAIT_DURATION}_bucket`, { ...labels, le: '1' })!;
    outputs.metricsDuring = body;

    await get(`${base}/release`);
    let after = '';
    await (async () => {
      const until = Date.now() + 15_000;
      for (;;) {
        after = (await get(`${metricsBase}/metrics`)).body;
        if (valueOf(after, `${DB_CLIENT_CONNECTION_WAIT_DURATION}_count`, labels)! >= servedBefore + 4) break;
        if (Date.now() > until) throw new Error(`the waiters were never served:\n${after}`);
        await sleep(100);
      }
    })();
    outputs.metricsAfter = after;
    // Each of the four waited more than the exhaustion threshold (1 s) before it was served.
    const overOne = valueOf(after, `${DB_CLIENT_CONNECTION_WAIT_DURATION}_count`, labels)! - valueOf(after, `${DB_CLIENT_CONNECTION_WAIT_DURATION}_bucket`, { ...labels, le: '1' })!;
    expect(overOne - overOneBefore).toBe(4);
    expect(valueOf(after, DB_CLIENT_POOL_EXHAUSTED, labels)).toBe(0);
    expect(valueOf(after, DB_CLIENT_CONNECTION_WAITS, labels)).toBe(4);
    exhausted.push(String(valueOf(after, DB_CLIENT_POOL_EXHAUSTED, labels)), '0', '0');

    // The recorded samples, one a minute, through the shipped rule.
    const promtool = requireBinary('promtool');
    const [series] = find(body, DB_CLIENT_POOL_EXHAUSTED, labels);
    const seriesLabels = { job: 'shop', instance: 'app:9464', ...series.labels };
    const selector = `${DB_CLIENT_POOL_EXHAUSTED}{${Object.entries(seriesLabels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    const rule = readRules().find((r) => r.alert === 'LeakwatchPoolExhausted')!;
    const render = (template: string) =>
      template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => (seriesLabels as Record<string, string>)[name]).replace('{{ $value | humanizePercentage }}', '100%');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakwatch-recorded-'));
    const test = [
      `rule_files: [${JSON.stringify(RULES_FILE)}]`,
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      `      - series: ${JSON.stringify(selector)}`,
      `        values: '${exhausted.join(' ')}'`,
      '    alert_rule_test:',
      '      - eval_time: 3m',
      '        alertname: LeakwatchPoolExhausted',
      '        exp_alerts:',
      `          - exp_labels: ${JSON.stringify({ severity: 'critical', ...seriesLabels })}`,
      `            exp_annotations: ${JSON.stringify({ summary: render(rule.annotations!.summary), description: render(rule.annotations!.description) })}`,
      '      - eval_time: 8m',
      '        alertname: LeakwatchPoolExhausted',
      '        exp_alerts: []',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'recorded.test.yml'), test);
    try {
      const result = run(promtool, ['test', 'rules', path.join(dir, 'recorded.test.yml')]);
      expect(result.stdout + result.stderr).toContain('SUCCESS');
      expect(result.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries no query string, SQL parameter, Redis argument or password in the API, the endpoint, the signal, the log or the metrics', () => {
    expect(Object.keys(outputs).sort()).toEqual(['api', 'endpointJson', 'endpointText text/plain', 'endpointText undefined', 'exhaustion', 'metricsAfter', 'metricsDuring', 'signal']);
    for (const [where, text] of Object.entries(outputs)) {
      expect(text.length, where).toBeGreaterThan(100);
      expect(text, where).not.toMatch(SECRET);
      expect(text, where).not.toContain('?token');
    }
    expect(app.output).not.toMatch(SECRET);
    // The detector can fail: the secrets were there to be found.
    expect(`GET /hold/idle?token=hunter2-query`).toMatch(SECRET);
  });
});
