import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameKind } from '../../src/core/stack.js';
import type { LeakedConnection, LeakedResponse, Report } from '../../src/report/json.js';
import type { AppBuild } from './support/app-build.mjs';
import { nestApp } from './support/apps.js';
import { get, getNeverAnswered, isAlive, serve, sleep, type Answer, type Served } from './support/served-app.js';

/**
 * fixtures/nest-app (NestJS 12, ESM), compiled by tsc with source maps and started with
 * `leakwatch run -- npm start` (`node --enable-source-maps dist/main.js`) on each adapter:
 * - `GET /users/:id`: a service checks out a pg client and throws a NotFoundException without
 *   releasing it;
 * - `GET /events/:channel`: a Redis subscriber per request, never quit;
 * - `GET /audit/:id`: an interceptor replaces `res.end` and swallows the end of a refused audit;
 * - `GET /reports/:id`: an interceptor turns an error into an Observable that never emits;
 * - `GET /orders/:id`: an exception filter logs the error and never answers;
 * - healthy controls: `/health`, the same routes on their good paths, a timing interceptor that
 *   replaces `res.end` and calls through, and an exception filter that answers the error itself.
 */

const CONNECTION_THRESHOLD_MS = 400;
const RESPONSE_THRESHOLD_MS = 2000;
const NEVER_ANSWERED = ['/audit/refused', '/reports/broken', '/orders/broken'];

async function drive(port: number): Promise<Record<string, Answer>> {
  const answers: Record<string, Answer> = {};
  for (const urlPath of ['/health', '/users/1', '/users/abc', '/events/news', '/audit/1', '/reports/1', '/orders/1', '/items/1', '/items/missing']) {
    answers[urlPath] = await get(port, urlPath);
  }
  const hangUps = NEVER_ANSWERED.map((urlPath) => getNeverAnswered(port, urlPath));
  await sleep(RESPONSE_THRESHOLD_MS + CONNECTION_THRESHOLD_MS + 1000);
  for (const hangUp of hangUps) hangUp();
  await sleep(100);
  return answers;
}

const appSite = (c: LeakedConnection | undefined) => c?.acquiredAt?.split('\n').find((frame) => frameKind(frame) === 'app') ?? '';

describe.each(['express', 'fastify'])('NestJS 12 on %s, started with `leakwatch run -- npm start`', (adapter) => {
  let app: AppBuild;
  let served: Served;
  let answers: Record<string, Answer>;
  let ended: Awaited<ReturnType<Served['stop']>>;
  let report: Report;
  const src = (file: string) => path.join(app.dir, 'src', file);
  const response = (urlPath: string): LeakedResponse | undefined => report.leakedResponses.find((r) => r.path === urlPath);

  beforeAll(async () => {
    app = await nestApp();
    served = await serve({
      cwd: app.dir,
      command: ['npm', 'start'],
      env: { NEST_ADAPTER: adapter },
      port: /listening (\d+)/,
      underRun: true,
      connectionThresholdMs: CONNECTION_THRESHOLD_MS,
      responseThresholdMs: RESPONSE_THRESHOLD_MS,
    });
    answers = await drive(served.port);
    ended = await served.stop();
    report = ended.report;
  }, 120_000);
  afterAll(() => served?.kill());

  it('answers the healthy controls (interceptors that call through, a filter that answers the error)', () => {
    for (const urlPath of ['/health', '/users/1', '/audit/1', '/reports/1', '/orders/1', '/items/1']) expect(answers[urlPath].status, urlPath).toBe(200);
    expect(answers['/users/abc'].status).toBe(404);
    expect(answers['/items/missing']).toMatchObject({ status: 400, body: expect.stringContaining('no such item') });
  });

  it("names the service's unreleased pg client by the controller's route and its line in src/", () => {
    const [client] = report.leakedConnections.filter((c) => c.ownerPath === '/users/abc');
    expect(client).toMatchObject({ kind: 'pg', reason: 'held-after-response-closed', ownerRoute: '/users/:id', ownerState: 'closed' });
    expect(appSite(client)).toContain(`${src('users.service.ts')}:9:`);
  });

  it('names the Redis subscriber made per request by its route', () => {
    const [subscriber] = report.leakedConnections.filter((c) => c.ownerPath === '/events/news');
    expect(subscriber).toMatchObject({ kind: 'redis', state: 'subscriber', reason: 'held-after-response-closed', ownerRoute: '/events/:channel' });
    expect(appSite(subscriber)).toContain(`${src('controllers.ts')}:`);
  });

  it('names the interceptor that replaced res.end and did not call through as the root cause', () => {
    const audit = response('/audit/refused');
    expect(audit).toMatchObject({ route: '/audit/:id', reason: 'unclosed' });
    const culprit = audit!.endOverrides.filter((o) => o.called && !o.calledThrough);
    expect(culprit).toEqual([expect.objectContaining({ at: expect.stringMatching(new RegExp(`^${src('interceptors.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+$`)) })]);
    // The timing interceptor's replacement was never reached: the audit's end stopped first.
    expect(audit!.endOverrides.filter((o) => !o.called)).toHaveLength(1);
    expect(ended.output).toMatch(/res\.end replaced at .*interceptors\.ts:\d+:\d+: called, but did not call the end it replaced/);
  });

  it('reports responses an interceptor or an exception filter swallowed, by route', () => {
    expect(response('/reports/broken')).toMatchObject({ route: '/reports/:id', reason: 'unclosed' });
    expect(response('/orders/broken')).toMatchObject({ route: '/orders/:id', reason: 'unclosed' });
  });

  it('reports nothing else: the healthy controls own nothing and no response of theirs leaked', () => {
    expect(report.leakedResponses.map((r) => r.path).sort()).toEqual([...NEVER_ANSWERED].sort());
    expect(report.leakedConnections.map((c) => c.ownerPath).sort()).toEqual(['/events/news', '/users/abc']);
  });

  it("shows no frame of Node's own (node:diagnostics_channel on Fastify) among the app's frames", () => {
    for (const c of report.leakedConnections) expect(c.acquiredAt ?? '', c.id).not.toMatch(/\(node:|^at node:/m);
    const shown = ended.output.split('\n').filter((line) => /^\s+at /.test(line));
    expect(shown.length).toBeGreaterThanOrEqual(2);
    for (const line of shown) expect(line).not.toMatch(/node:/);
  });

  it('exits 1 with the summary and leaves nothing running', async () => {
    expect(ended.status, ended.output).toBe(1);
    await sleep(200);
    expect(served.tree.filter(isAlive)).toEqual([]);
  });
});
