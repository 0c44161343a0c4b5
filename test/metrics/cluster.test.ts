import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUILD_INFO,
  HTTP_SERVER_LEAKED_RESPONSES,
  HTTP_SERVER_OLDEST_OPEN_RESPONSE_START,
  HTTP_SERVER_OPEN_RESPONSES,
  HTTP_SERVER_RESPONSE_DURATION,
  HTTP_SERVER_RESPONSES,
} from '../../src/index.js';
import { ROOT } from './support/dashboard.js';
import { start, type Child } from './support/processes.js';
import { find, scrape, valueOf } from './support/scrape.js';
import { freePort, requireBuild } from './support/tools.js';

/**
 * A real Node cluster (a primary and two workers sharing a port) under leakwatch/register with
 * LEAKWATCH_METRICS_PORT: the primary serves every worker's metrics, combined.
 */

interface Answer {
  worker: string;
  startedAt: number;
  req: http.ClientRequest;
}

let primary: Child;
let appPort: number;
let metricsUrl: string;
const hanging: Answer[] = [];

/** A GET on a fresh connection (so the primary deals it to the next worker); resolves at the headers. */
function get(pathname: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: appPort, path: pathname, agent: false }, (res) => {
      resolve({ worker: String(res.headers['x-worker']), startedAt: Number(res.headers['x-started-at']), req });
      if (!pathname.startsWith('/hang')) res.resume();
    });
    req.on('error', (error) => (hanging.some((h) => h.req === req) ? undefined : reject(error)));
  });
}

const sum = (body: string, name: string, labels: Record<string, string> = {}) => find(body, name, labels).reduce((total, s) => total + s.value, 0);
const metrics = async () => (await scrape(metricsUrl)).body;

beforeAll(async () => {
  const { register } = requireBuild();
  appPort = await freePort();
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  primary = start('cluster primary', process.execPath, ['--import', register, path.join(ROOT, 'test/metrics/fixtures/cluster-app.mjs')], {
    PORT: String(appPort),
    WORKERS: '2',
    LEAKWATCH_METRICS_PORT: String(metricsPort),
    LEAKWATCH_RESPONSE_THRESHOLD: '200ms',
  });
  await primary.waitFor((line) => (line.includes('"ready"') ? true : undefined), 15_000);
}, 30_000);

afterAll(async () => {
  for (const answer of hanging) answer.req.destroy();
  await primary?.stop();
});

describe('a Node cluster under leakwatch/register', () => {
  it("serves every worker's metrics from the primary: counts summed, the oldest start the minimum of the workers'", async () => {
    const served = new Set<string>();
    for (let i = 0; i < 4; i++) served.add((await get(`/ok/${i}`)).worker);
    expect(served.size).toBe(2); // both workers answered

    for (let i = 0; i < 4; i++) {
      hanging.push(await get(`/hang/${i}`));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(new Set(hanging.map((h) => h.worker)).size).toBe(2);
    let body = '';
    const until = Date.now() + 5000;
    while (sum((body = await metrics()), HTTP_SERVER_LEAKED_RESPONSES) < 4) {
      if (Date.now() > until) throw new Error(`leaks not seen in time:\n${body}\n${primary.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    expect(valueOf(body, HTTP_SERVER_LEAKED_RESPONSES, { route: 'unmatched', reason: 'unclosed' })).toBe(4);
    expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: 'unmatched', outcome: 'finished' })).toBe(4);
    expect(valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_count`, { outcome: 'finished' })).toBe(4);
    expect(valueOf(body, HTTP_SERVER_OPEN_RESPONSES, { route: 'unmatched' })).toBe(4);
    const oldest = Math.min(...hanging.map((h) => h.startedAt));
    // The gauge is a wall-clock date; x-started-at is the ledger's stamp, on the monotonic clock
    // (src/core/clock.ts). The two part by a few ms (each is read in whole ms, and they drift apart
    // a little under NTP), so within 5 ms: the hanging requests are 50 ms apart.
    expect(valueOf(body, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toBeCloseTo(oldest / 1000, 2);
    expect(valueOf(body, BUILD_INFO)).toBe(1);
    // One family, one sample per label set: the workers' series are combined, not listed side by side.
    expect(find(body, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toHaveLength(1);
  });

  it('keeps the counts of a worker that exits, so totals never go down', async () => {
    const exiting = (await get('/exit')).worker;
    await primary.waitFor((line) => (line.includes(`"exited":${exiting}`) ? true : undefined));
    const survivors = hanging.filter((h) => h.worker !== exiting);
    let body = '';
    const until = Date.now() + 5000;
    while (sum((body = await metrics()), HTTP_SERVER_OPEN_RESPONSES) !== survivors.length) {
      if (Date.now() > until) throw new Error(`open responses of the exited worker still counted:\n${body}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Counters and histograms: the exited worker's last scraped values stay in the sums.
    expect(valueOf(body, HTTP_SERVER_LEAKED_RESPONSES, { route: 'unmatched', reason: 'unclosed' })).toBe(4);
    expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: 'unmatched', outcome: 'finished' })).toBeGreaterThanOrEqual(4);
    expect(valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_count`, { outcome: 'finished' })).toBeGreaterThanOrEqual(4);
    // Gauges are readings of processes alive now.
    expect(valueOf(body, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toBeCloseTo(Math.min(...survivors.map((h) => h.startedAt)) / 1000, 2);
    expect(valueOf(body, BUILD_INFO)).toBe(1);
  });
});
