import http from 'node:http';
import { serve } from '@hono/node-server';
import express from 'express';
import express4 from 'express4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, wrapFetchHandler, type Started } from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { createApp as createExpressApp } from '../../fixtures/express-error-reporter.mjs';
import { createApp as createFastifyApp } from '../../fixtures/fastify-app.mjs';
import { createApp as createHonoApp } from '../../fixtures/hono-app.mjs';
import { createApp as createKoaApp } from '../../fixtures/koa-app.mjs';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 250 });
});
afterAll(() => started.stop());

const ledger = () => getRuntime()!.ledger;

/** Drives `path` on a server that never answers it and returns the leaked response's report entry. */
async function leakOf(port: number, path: string) {
  const expected = path.split('?')[0];
  const find = () => reportOf(ledger()).leakedResponses.find((r) => r.path === expected && r.reason === 'unclosed');
  fireAndForget(port, path);
  await waitUntil(() => find() !== undefined, 3000, `${path} to leak`);
  return find()!;
}

describe('route templates', () => {
  it('Express 5: baseUrl + route path, captured while routing (the error handler runs after the router unwound)', async () => {
    const server = http.createServer(createExpressApp());
    const port = await listen(server);
    expect((await leakOf(port, '/users/boom?token=x')).route).toBe('/users/:id');
    await close(server);
  });

  it('Express 4: the same, through a mounted router', async () => {
    const app = express4();
    const router = express4.Router();
    router.get('/:sku/stock', () => {}); // never answers
    app.use('/shop', router);
    const server = http.createServer(app);
    const port = await listen(server);
    expect((await leakOf(port, '/shop/abc/stock')).route).toBe('/shop/:sku/stock');
    await close(server);
  });

  it('Koa with @koa/router, prefix included', async () => {
    const server = http.createServer(createKoaApp().callback());
    const port = await listen(server);
    expect((await leakOf(port, '/api/items/stuck?x=1')).route).toBe('/api/items/:id');
    await close(server);
  });

  it('Fastify, from its request handler tracing channel', async () => {
    const app = createFastifyApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    expect((await leakOf(port, '/orders/stuck')).route).toBe('/orders/:id');
    app.server.closeAllConnections();
    await app.close();
  });

  it('Hono served by @hono/node-server, through the honoRoutes() middleware', async () => {
    const app = createHonoApp();
    const { server, port } = await new Promise<{ server: http.Server; port: number }>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve({ server: s as http.Server, port: info.port }));
    });
    expect((await leakOf(port, '/reports/stuck')).route).toBe('/reports/:id');
    await close(server);
  });

  it('Hono through wrapFetchHandler and app.request(): a body never read is open, then open-at-exit at the end', async () => {
    const app = createHonoApp();
    app.fetch = wrapFetchHandler(app.fetch);
    const done = await app.request('/reports/1?q=1');
    expect(await done.json()).toEqual({ id: '1' });
    const stuck = await app.request('/reports/stuck');
    expect(stuck.status).toBe(200);
    const open = [...ledger().eachOpenResponse()].filter((r) => r.leak === null && r.route === '/reports/:id');
    expect(open).toHaveLength(1);
    ledger().finalize();
    const leak = reportOf(ledger()).leakedResponses.find((r) => r.route === '/reports/:id' && r.reason === 'open-at-exit');
    expect(leak).toMatchObject({ method: 'GET', path: '/reports/stuck' });
    await stuck.body?.cancel();
  });

  it("Express: the app still reads its own req.route, in the handler and in an error handler", async () => {
    const app = express();
    const seen: string[] = [];
    app.get('/things/:id', (req, res, next) => {
      seen.push(req.route.path);
      if (req.params.id === 'bad') return next(new Error('bad thing'));
      res.send('ok');
    });
    app.use((err: Error, req: express.Request, res: express.Response, _next: express.NextFunction) => {
      seen.push(`error handler: ${req.route?.path}`);
      res.status(500).send(err.message);
    });
    const server = http.createServer(app);
    const port = await listen(server);
    expect(await request(port, '/things/1')).toMatchObject({ status: 200, body: 'ok' });
    expect(await request(port, '/things/bad')).toMatchObject({ status: 500 });
    expect(seen).toEqual(['/things/:id', '/things/:id', 'error handler: /things/:id']);
    await close(server);
  });

  it("Next.js: the route Next matched, read from its request meta, kept after the response closes", async () => {
    // What Next's router does to the IncomingMessage before route code runs (the real thing is in
    // test/frameworks/next.test.ts); leakwatch only reads it.
    const NEXT_REQUEST_META = Symbol.for('NextInternalRequestMeta');
    const server = http.createServer((req, res) => {
      (req as unknown as Record<symbol, unknown>)[NEXT_REQUEST_META] = { match: { definition: { pathname: '/blog/[...slug]', page: '/blog/[...slug]/route' } } };
      if (req.url === '/blog/a/b') res.end('ok');
    });
    const port = await listen(server);
    expect((await leakOf(port, '/blog/stuck/post?draft=1')).route).toBe('/blog/[...slug]');
    // Metrics read the route as the response closes, once the record has let the response go.
    const routesAtClose: Array<string | null> = [];
    const stop = ledger().observe({ responseClosed: (response) => routesAtClose.push(response.route) });
    await request(port, '/blog/a/b');
    await waitUntil(() => routesAtClose.length > 0, 2000, 'the response to close');
    stop();
    expect(routesAtClose).toEqual(['/blog/[...slug]']);
    await close(server);
  });

  it('plain node:http has no route: null in reports', async () => {
    const server = http.createServer(() => {});
    const port = await listen(server);
    expect((await leakOf(port, '/plain')).route).toBeNull();
    await close(server);
  });
});
