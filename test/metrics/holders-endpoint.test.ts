import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_SERVER_RESPONSES, serveMetrics, start, type HoldersSnapshot, type MetricsServer, type Started } from '../../src/index.js';
import { negotiateHolders } from '../../src/metrics/holders-endpoint.js';
import { scrape, valueOf } from './support/scrape.js';

/** `GET /leakwatch/holders` on the metrics server: formats, the one query parameter, methods. */

let started: Started;
let server: MetricsServer;
let holders = '';
beforeAll(async () => {
  started = start({ responseThreshold: 60_000 });
  server = await serveMetrics({ port: 0 });
  holders = server.url!.replace(/\/metrics$/, '/leakwatch/holders');
});
afterAll(async () => {
  await server.close();
  started.stop();
});

function send(url: string, method: string): Promise<{ status: number; allow?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /leakwatch/holders', () => {
  it('answers JSON by default (curl’s */* too), the snapshot started.holders() gives', async () => {
    for (const accept of [undefined, '*/*', 'application/json', 'text/html,application/xhtml+xml,*/*;q=0.8']) {
      const reply = await scrape(holders, accept);
      expect(reply.status, accept).toBe(200);
      expect(reply.contentType, accept).toBe('application/json; charset=utf-8');
      const snapshot = JSON.parse(reply.body) as HoldersSnapshot;
      expect(Object.keys(snapshot)).toEqual(Object.keys(started.holders()));
      expect(snapshot).toMatchObject({ pid: process.pid, exhaustionThresholdMs: 1000, pools: [] });
    }
  });

  it('answers the text table for ?format=text, or when the client prefers text/plain', async () => {
    for (const [query, accept] of [
      ['?format=text', undefined],
      ['', 'text/plain'],
      ['', 'text/plain, application/json;q=0.5'],
      ['?format=text', 'application/json'],
    ] as const) {
      const reply = await scrape(holders + query, accept);
      expect(reply.contentType, `${query} ${accept}`).toBe('text/plain; charset=utf-8');
      expect(reply.body).toMatch(/^leakwatch holders of pid \d+ at .*: no connection held, no checkout waiting\n$/);
    }
    expect((await scrape(`${holders}?format=json`, 'text/plain')).contentType).toBe('application/json; charset=utf-8');
  });

  it('takes no query parameter but format=json|text, and answers 400 saying so', async () => {
    for (const query of ['?format=xml', '?pool=orders', '?format=text&token=x']) {
      const reply = await scrape(holders + query);
      expect(reply.status, query).toBe(400);
      expect(reply.body).toBe('/leakwatch/holders takes one query parameter, format=json or format=text.\n');
    }
  });

  it('answers GET and HEAD only', async () => {
    const head = await send(holders, 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
    const post = await send(holders, 'POST');
    expect(post).toMatchObject({ status: 405, allow: 'GET, HEAD' });
  });

  it('is not counted as one of the app’s responses, and is named by the 404 of other paths', async () => {
    await scrape(holders);
    const { body } = await scrape(server.url!);
    expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: 'unmatched', outcome: 'finished' })).toBeUndefined();
    const other = await scrape(server.url!.replace('/metrics', '/other'));
    expect(other).toMatchObject({ status: 404, body: 'leakwatch serves its metrics at /metrics and the holders at /leakwatch/holders\n' });
  });
});

describe('negotiateHolders(accept)', () => {
  it.each([
    [undefined, 'json'],
    ['', 'json'],
    ['*/*', 'json'],
    ['text/plain', 'text'],
    ['text/plain;q=0.9, application/json', 'json'],
    ['application/json;q=0.1, text/plain;q=0.2', 'text'],
    ['text/plain;q=0', 'json'],
  ])('reads %j as %s', (accept, format) => {
    expect(negotiateHolders(accept)).toBe(format);
  });
});
