import http from 'node:http';
import express from 'express';
import { Registry, register as globalRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMetrics, HTTP_SERVER_LEAKED_RESPONSES, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START, HTTP_SERVER_OPEN_RESPONSES, HTTP_SERVER_RESPONSE_DURATION, HTTP_SERVER_RESPONSES, metricsHandler, OVERFLOW_VALUE, start, UNMATCHED_ROUTE, type LeakwatchMetrics, type Started } from '../../src/index.js';
import { negotiateFormat, OPENMETRICS_TEXT, PROMETHEUS_TEXT, ResponseRecord, getRuntime } from '../support/internals.js';
import { close, listen, request, sleep, waitUntil } from '../support/http.js';
import { find, PROMETHEUS_ACCEPT, samples, scrape, valueOf } from './support/scrape.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 200, connectionThreshold: 200 });
});
afterAll(() => started.stop());

const ledger = () => getRuntime()!.ledger;

/** A request whose client leaves after `ms`; resolves when it has. */
function leaveAfter(port: number, path: string, ms: number, method = 'GET'): { req: http.ClientRequest; left: Promise<void> } {
  const req = http.request({ host: '127.0.0.1', port, path, method, agent: false });
  req.on('error', () => {});
  req.end();
  const left = new Promise<void>((resolve) =>
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms),
  );
  return { req, left };
}

async function text(metrics: LeakwatchMetrics): Promise<string> {
  return (await metrics.scrape()).body;
}

function app(): express.Express {
  const app = express();
  app.get('/orders/:id', (_req, res) => {
    res.send('ok');
  });
  app.post('/orders/:id', (_req, res) => {
    res.send('made');
  });
  app.get('/hang/:id', () => {
    // never answers
  });
  app.get('/slow', (_req, res) => {
    const timer = setTimeout(() => res.end('late'), 2000);
    res.on('close', () => clearTimeout(timer));
  });
  for (const letter of ['a', 'b', 'c', 'd']) {
    app.get(`/${letter}/:id`, (_req, res) => {
      res.send(letter);
    });
  }
  return app;
}

describe('createMetrics()', () => {
  describe('when responses finish, abort and leak', () => {
    it('counts each outcome by method and route template, and times it', async () => {
      const metrics = createMetrics({ registry: new Registry() });
      const server = http.createServer(app());
      const port = await listen(server);
      expect(await request(port, '/orders/1?token=hunter2')).toMatchObject({ status: 200 });
      expect(await request(port, '/orders/2', { method: 'POST' })).toMatchObject({ status: 200 });
      // The client leaves 50 ms after the server has the request (from the request's sending, a
      // loaded machine took 24 ms to get it there, and the abort came 26 ms after it opened).
      const open = ledger().openResponses;
      const slow = http.request({ host: '127.0.0.1', port, path: '/slow', agent: false });
      slow.on('error', () => {});
      slow.end();
      await waitUntil(() => ledger().openResponses === open + 1, 2000, 'the slow request to reach the server');
      await sleep(50);
      slow.destroy();
      await waitUntil(() => ledger().openResponses === open, 2000, 'the aborted response to close');

      const body = await text(metrics);
      expect(valueOf(body, HTTP_SERVER_RESPONSES, { method: 'GET', route: '/orders/:id', outcome: 'finished' })).toBe(1);
      expect(valueOf(body, HTTP_SERVER_RESPONSES, { method: 'POST', route: '/orders/:id', outcome: 'finished' })).toBe(1);
      expect(valueOf(body, HTTP_SERVER_RESPONSES, { method: 'GET', route: '/slow', outcome: 'aborted' })).toBe(1);
      expect(valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_count`, { method: 'GET', route: '/slow', outcome: 'aborted' })).toBe(1);
      const slowSum = valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_sum`, { method: 'GET', route: '/slow', outcome: 'aborted' });
      expect(slowSum).toBeGreaterThanOrEqual(0.04);
      expect(slowSum).toBeLessThan(1);
      expect(valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_bucket`, { method: 'GET', route: '/slow', outcome: 'aborted', le: '0.025' })).toBe(0);
      expect(valueOf(body, `${HTTP_SERVER_RESPONSE_DURATION}_bucket`, { method: 'GET', route: '/slow', outcome: 'aborted', le: '1' })).toBe(1);
      expect(body).not.toContain('hunter2');
      metrics.close();
      await close(server);
    });

    it('counts leaked responses by reason, and reads the open ones and the oldest start when scraped', async () => {
      const metrics = createMetrics({ registry: new Registry() });
      const server = http.createServer(app());
      const port = await listen(server);
      const first = leaveAfter(port, '/hang/1', 5000);
      await new Promise((r) => setTimeout(r, 30));
      const second = leaveAfter(port, '/hang/2', 5000);
      await waitUntil(() => ledger().totals.leakedResponses >= 2, 3000, 'two leaks');

      let body = await text(metrics);
      expect(valueOf(body, HTTP_SERVER_LEAKED_RESPONSES, { method: 'GET', route: '/hang/:id', reason: 'unclosed' })).toBe(2);
      expect(valueOf(body, HTTP_SERVER_OPEN_RESPONSES, { method: 'GET', route: '/hang/:id' })).toBe(2);
      const oldest = Math.min(...[...ledger().eachOpenResponse()].map((r) => r.startedAt));
      // The stamp is on the monotonic clock, the gauge a date: the ledger's offset between the two
      // clocks (a ms or two, whole ms) is added, as the gauge adds it.
      expect(valueOf(body, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toBeCloseTo((oldest + ledger().wallOffset()) / 1000, 3);
      // A date, compared with Prometheus's time(): it follows a step of the wall clock (NTP, an
      // operator), while the leak rules go on measuring on the monotonic clock.
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
      try {
        expect(valueOf(await text(metrics), HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toBeCloseTo(oldest / 1000 + 3600, 0);
      } finally {
        vi.restoreAllMocks();
      }

      first.req.destroy();
      second.req.destroy();
      await waitUntil(() => ledger().openResponses === 0, 2000, 'the leaked responses to close');
      body = await text(metrics);
      // Still leaked: the app never ended them. No longer open; the gauge keeps its series at 0.
      expect(valueOf(body, HTTP_SERVER_LEAKED_RESPONSES, { route: '/hang/:id' })).toBe(2);
      expect(valueOf(body, HTTP_SERVER_OPEN_RESPONSES, { method: 'GET', route: '/hang/:id' })).toBe(0);
      expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: '/hang/:id', outcome: 'aborted' })).toBe(2);
      // Nothing open: no sample at all, rather than a 0 that reads as "open since 1970".
      expect(find(body, HTTP_SERVER_OLDEST_OPEN_RESPONSE_START)).toEqual([]);
      expect(body).toContain(`# TYPE ${HTTP_SERVER_OLDEST_OPEN_RESPONSE_START} gauge`);
      metrics.close();
      await close(server);
    });
  });

  describe('label values', () => {
    it('writes unmatched for a response with no route template, never its URL', async () => {
      const metrics = createMetrics({ registry: new Registry() });
      const server = http.createServer((_req, res) => res.end('plain'));
      const port = await listen(server);
      await request(port, '/users/42/secret?token=hunter2');
      const body = await text(metrics);
      expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: UNMATCHED_ROUTE, outcome: 'finished' })).toBe(1);
      expect(body).not.toMatch(/users|hunter2|\?/);
      metrics.close();
      await close(server);
    });

    it('writes _OTHER for a method outside the fixed list', async () => {
      const metrics = createMetrics({ registry: new Registry() });
      const server = http.createServer((_req, res) => res.end('dav'));
      const port = await listen(server);
      await request(port, '/x', { method: 'PROPFIND' });
      await request(port, '/x', { method: 'DELETE' });
      const body = await text(metrics);
      expect(find(body, HTTP_SERVER_RESPONSES).map((s) => s.labels.method).sort()).toEqual(['DELETE', '_OTHER']);
      metrics.close();
      await close(server);
    });

    it('counts routes past maxRoutes under _overflow, each metric keeping the first ones it saw', async () => {
      const metrics = createMetrics({ registry: new Registry(), maxRoutes: 2 });
      const server = http.createServer(app());
      const port = await listen(server);
      for (const path of ['/a/1', '/b/1', '/c/1', '/d/1', '/a/2', '/d/2']) await request(port, path);
      const body = await text(metrics);
      const counted = Object.fromEntries(find(body, HTTP_SERVER_RESPONSES).map((s) => [s.labels.route, s.value]));
      expect(counted).toEqual({ '/a/:id': 2, '/b/:id': 1, [OVERFLOW_VALUE]: 3 });
      expect(() => createMetrics({ registry: new Registry(), maxRoutes: 0 })).toThrow(/option maxRoutes is 0; use a whole number above 0/);
      metrics.close();
      await close(server);
    });
  });

  describe('registries', () => {
    it("adds nothing to prom-client's global registry", () => {
      const before = globalRegistry.getMetricsAsArray().length;
      const own = createMetrics();
      const theirs = createMetrics({ registry: new Registry() });
      expect(globalRegistry.getMetricsAsArray().length).toBe(before);
      own.close();
      theirs.close();
    });

    it("adds its families to the app's Registry once, and close() takes them out again", async () => {
      const registry = new Registry();
      const mine = createMetrics({ registry });
      expect(createMetrics({ registry })).toBe(mine);
      expect(registry.getSingleMetric(HTTP_SERVER_RESPONSES)).toBeDefined();
      expect(await registry.metrics()).toContain(`# TYPE ${HTTP_SERVER_RESPONSES} counter`);
      mine.close();
      expect(registry.getMetricsAsArray()).toEqual([]);
      const again = createMetrics({ registry });
      expect(again).not.toBe(mine);
      again.close();
    });
  });
});

describe('metricsHandler()', () => {
  let server: http.Server;
  let port: number;
  let metrics: LeakwatchMetrics;
  const url = (path = '/metrics') => `http://127.0.0.1:${port}${path}`;

  beforeAll(async () => {
    metrics = createMetrics();
    const application = app();
    application.get('/metrics', metricsHandler({ metrics }));
    application.get('/prom-metrics', metricsHandler({ registry: new Registry() }));
    server = http.createServer(application);
    port = await listen(server);
    const hang = leaveAfter(port, '/hang/9', 5000);
    await waitUntil(() => ledger().leaks.some((l) => l instanceof ResponseRecord && l.detail?.path === '/hang/9'), 3000, 'the leak');
    hang.req.destroy();
  });
  afterAll(async () => {
    metrics.close();
    await close(server);
  });

  it('answers OpenMetrics, exemplars included, to a scraper that asks for it (as Prometheus does)', async () => {
    const { status, contentType, body } = await scrape(url(), PROMETHEUS_ACCEPT);
    expect(status).toBe(200);
    expect(contentType).toBe(OPENMETRICS_TEXT);
    expect(body.endsWith('# EOF\n')).toBe(true);
    // OpenMetrics names a counter family without _total; its samples carry it.
    expect(body).toContain('# TYPE leakwatch_http_server_leaked_responses counter');
    const [leaked] = find(body, HTTP_SERVER_LEAKED_RESPONSES, { route: '/hang/:id' });
    expect(leaked.exemplar).toMatch(/^\{response_id="\d+:r\d+"\} 1 \d+(\.\d+)?$/);
    const leak = ledger().leaks.find((l) => l instanceof ResponseRecord && l.detail?.path === '/hang/9');
    expect(leaked.exemplar).toContain(`response_id="${leak?.id}"`);
    // Exemplars only on counters: none on gauges or histograms.
    expect(samples(body).filter((s) => s.exemplar !== null && !s.name.endsWith('_total'))).toEqual([]);
  });

  it('answers the Prometheus text format, without exemplars, otherwise; even after an OpenMetrics scrape', async () => {
    await scrape(url(), PROMETHEUS_ACCEPT);
    for (const accept of [undefined, 'text/plain;version=0.0.4', '*/*', 'application/openmetrics-text;q=0.1,text/plain;q=0.9']) {
      const { contentType, body } = await scrape(url(), accept);
      expect(contentType, accept).toBe(PROMETHEUS_TEXT);
      expect(body).toContain(`# TYPE ${HTTP_SERVER_LEAKED_RESPONSES} counter`);
      expect(body).not.toContain('# EOF');
      expect(samples(body).filter((s) => s.exemplar !== null)).toEqual([]);
      expect(valueOf(body, HTTP_SERVER_LEAKED_RESPONSES, { route: '/hang/:id' })).toBeGreaterThanOrEqual(1);
    }
  });

  it("serves an app's Prometheus-format Registry in both formats (without exemplars, which prom-client keeps only in OpenMetrics registries)", async () => {
    const om = await scrape(url('/prom-metrics'), PROMETHEUS_ACCEPT);
    expect(om.contentType).toBe(OPENMETRICS_TEXT);
    expect(om.body).toContain('# TYPE leakwatch_http_server_responses counter');
    const text = await scrape(url('/prom-metrics'));
    expect(text.contentType).toBe(PROMETHEUS_TEXT);
    expect(text.body).toContain(`# TYPE ${HTTP_SERVER_RESPONSES} counter`);
  });

  it('does not count its own scrapes', async () => {
    for (let i = 0; i < 3; i++) await scrape(url());
    const { body } = await scrape(url());
    expect(find(body, HTTP_SERVER_RESPONSES, { route: '/metrics' })).toEqual([]);
    expect(find(body, HTTP_SERVER_RESPONSES, { route: '/hang/:id' })).toHaveLength(1);
  });

  it('answers HEAD without a body and other methods with 405', async () => {
    const head = await scrape(url(), undefined, 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
    const handler = metricsHandler({ metrics });
    const plain = http.createServer(handler);
    const plainPort = await listen(plain);
    const post = await scrape(`http://127.0.0.1:${plainPort}/`, undefined, 'POST');
    expect(post.status).toBe(405);
    await close(plain);
  });
});

describe('negotiateFormat(accept)', () => {
  it('picks OpenMetrics 1.0.0 when it is preferred or tied, text otherwise', () => {
    expect(negotiateFormat(PROMETHEUS_ACCEPT)).toBe('openmetrics');
    expect(negotiateFormat('application/openmetrics-text')).toBe('openmetrics');
    expect(negotiateFormat('application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4')).toBe('openmetrics');
    expect(negotiateFormat(undefined)).toBe('prometheus');
    expect(negotiateFormat('text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5')).toBe('prometheus');
    expect(negotiateFormat('application/openmetrics-text;version=0.0.1')).toBe('prometheus');
    expect(negotiateFormat('application/openmetrics-text;q=0')).toBe('prometheus');
    expect(negotiateFormat('application/json')).toBe('prometheus');
  });
});
