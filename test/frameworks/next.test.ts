import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameKind } from '../../src/core/stack.js';
import type { LeakedConnection, Report } from '../../src/report/json.js';
import type { AppBuild } from './support/app-build.mjs';
import { nextApp, nextBundledPgApp } from './support/apps.js';
import { freePort, get, getNeverAnswered, isAlive, REGISTER, serve, sleep, type Answer, type ServeOptions, type Served } from './support/served-app.js';

/**
 * fixtures/next-app, built with `next build` (Next.js 15 with webpack, Next.js 16 with Turbopack)
 * with server source maps and standalone output, started as Next's docs say, with leakwatch:
 * - app router route handlers: `/api/leak/[id]` keeps a pg client on a 400, `/blog/[...slug]`
 *   keeps a Redis subscriber (on the copy of ioredis Next bundles, handed over with
 *   instrumentIoredis), `/api/hang` never answers; `/api/orders/[id]` and the streamed
 *   `/api/stream` are healthy;
 * - a pages router API route, `/api/users/[id]`, keeps a pg client and a Redis connection (ioredis
 *   from node_modules, found by the preload) on a 404; `/api/ping` is healthy.
 * Each app is built once (and kept in .cache/apps); each server serves every scenario once.
 */

const CONNECTION_THRESHOLD_MS = 400;
// Generous, and the routes are loaded before a leak is driven (see warmUp): Next loads a route's
// code on its first request, which takes over a second on a busy machine.
const RESPONSE_THRESHOLD_MS = 3000;

interface Answers {
  [path: string]: Answer;
}

/**
 * Has Next load the code of every route without leaking anything: an OPTIONS request to each route
 * handler, which Next answers from the module's exports alone, and a GET of a healthy path of each
 * pages API route (which runs its handler for any method). A first request that outlasts the
 * response threshold while Next loads its route is a leaked response, finished late; its
 * connections would be reported held by it, not held after it closed.
 */
async function warmUp(port: number, routeHandlers: string[], pagesRoutes: string[] = []): Promise<void> {
  for (const urlPath of routeHandlers) {
    const { status } = await get(port, urlPath, 30_000, 'OPTIONS');
    if (status !== 204) throw new Error(`OPTIONS ${urlPath} answered ${status}, not 204: the warm-up may have run the route`);
  }
  for (const urlPath of pagesRoutes) await get(port, urlPath, 30_000);
}

/** Every scenario, once, once the routes are loaded: the requests answered, then one never answered, hung up after it leaked. */
async function drive(port: number): Promise<Answers> {
  await warmUp(port, ['/api/leak/7', '/api/orders/3', '/api/stream', '/blog/2026/hello', '/api/hang'], ['/api/users/5']);
  const answers: Answers = {};
  for (const urlPath of ['/api/leak/abc', '/api/leak/7', '/api/orders/3', '/api/stream', '/blog/2026/hello', '/api/users/missing', '/api/users/5', '/api/ping']) {
    answers[urlPath] = await get(port, urlPath);
  }
  const hangUp = getNeverAnswered(port, '/api/hang');
  await sleep(RESPONSE_THRESHOLD_MS + CONNECTION_THRESHOLD_MS + 600);
  hangUp();
  await sleep(100);
  return answers;
}

type Ended = Awaited<ReturnType<Served['stop']>>;

/** Starts the app in `cwd` as `how` says, with leakwatch and the file's thresholds, once Next prints its address. */
const serveNext = (cwd: string, how: Pick<ServeOptions, 'command' | 'env' | 'underRun'>) =>
  serve({ cwd, ...how, port: /http:\/\/127\.0\.0\.1:(\d+)/, connectionThresholdMs: CONNECTION_THRESHOLD_MS, responseThresholdMs: RESPONSE_THRESHOLD_MS });

/** Before the block's tests: `start()`s the app, drives every scenario once and stops it; kills what is left after them. */
function useDrivenApp(start: () => Promise<Served>): { readonly served: Served; readonly answers: Answers; readonly ended: Ended } {
  let served: Served | undefined;
  let answers: Answers;
  let ended: Ended;
  beforeAll(async () => {
    served = await start();
    answers = await drive(served.port);
    ended = await served.stop();
  }, 60_000);
  afterAll(() => served?.kill());
  return {
    get served() {
      return served!;
    },
    get answers() {
      return answers;
    },
    get ended() {
      return ended;
    },
  };
}

const byOwner = (report: Report, ownerPath: string) => report.leakedConnections.filter((c) => c.ownerPath === ownerPath);
/** The first frame of the app's own code where a leaked connection was acquired. */
const site = (c: LeakedConnection | undefined) => c?.acquiredAt?.split('\n').find((frame) => frameKind(frame) === 'app') ?? '';
/**
 * A frame at `line` of the app's `file`: under the app's folder, or the standalone folder's copy of
 * it. Named (`at GET (…)`) or not (`at …`): Turbopack since Next.js 16.5 exports a route's handlers
 * as anonymous functions.
 */
const source = (dir: string, file: string, line: number) => {
  const where = `${escape(dir)}(?:/\\.next/standalone)?/${escape(file)}:${line}:\\d+`;
  return new RegExp(`^at (?:\\S.* \\(${where}\\)|${where})$`);
};
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What every way of starting the app must report. */
function expectLeaksOfTheApp(report: Report, answers: Answers, dir: string): void {
  expect(answers['/api/leak/abc'].status).toBe(400);
  expect(answers['/api/users/missing'].status).toBe(404);
  expect(answers['/api/stream'].body.trim().split('\n')).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
  for (const healthy of ['/api/leak/7', '/api/orders/3', '/blog/2026/hello', '/api/users/5', '/api/ping']) expect(answers[healthy].status, healthy).toBe(200);

  // The route handler's pg client, named by Next's route and the line of the app's source.
  const [leakPg] = byOwner(report, '/api/leak/abc');
  expect(leakPg).toMatchObject({ kind: 'pg', reason: 'held-after-response-closed', ownerRoute: '/api/leak/[id]', ownerMethod: 'GET', ownerState: 'closed' });
  expect(site(leakPg)).toMatch(source(dir, 'app/api/leak/[id]/route.js', 7));

  // The bundled ioredis: a subscriber per request, under the catch-all route.
  const [subscriber] = byOwner(report, '/blog/2026/hello');
  expect(subscriber).toMatchObject({ kind: 'redis', state: 'subscriber', reason: 'held-after-response-closed', ownerRoute: '/blog/[...slug]' });
  expect(site(subscriber)).toMatch(source(dir, 'app/blog/[...slug]/route.js', 8));

  // The pages API route: pg and ioredis from node_modules.
  const pages = byOwner(report, '/api/users/missing');
  expect(pages.map((c) => [c.kind, c.ownerRoute, c.reason]).sort()).toEqual([
    ['pg', '/api/users/[id]', 'held-after-response-closed'],
    ['redis', '/api/users/[id]', 'held-after-response-closed'],
  ]);
  expect(site(pages.find((c) => c.kind === 'pg'))).toMatch(source(dir, 'pages/api/users/[id].js', 6));
  expect(site(pages.find((c) => c.kind === 'redis'))).toMatch(source(dir, 'pages/api/users/[id].js', 7));

  // The handler that never answers, by its route; nothing else leaked, healthy routes own nothing.
  expect(report.leakedResponses).toEqual([expect.objectContaining({ method: 'GET', path: '/api/hang', route: '/api/hang', reason: 'unclosed' })]);
  expect(report.leakedConnections).toHaveLength(4);
  expect(report.summary).toMatchObject({ leakedResponses: 1, leakedConnections: 4 });
  expect(report.summary.responses).toBeGreaterThanOrEqual(9);

  // Node's own frames are never among the frames a report shows.
  for (const c of report.leakedConnections) expect(c.acquiredAt ?? '', c.id).not.toMatch(/\(node:|^at node:/m);
}

describe.each([
  { name: 'Next.js 15 (webpack)', folder: 'next15' as const },
  { name: 'Next.js 16 (Turbopack)', folder: 'next' as const },
])('$name', ({ folder }) => {
  let app: AppBuild;
  beforeAll(async () => {
    app = await nextApp(folder);
  }, 600_000);

  describe('when the app is started with `leakwatch run -- npm start` (next start, source maps on)', () => {
    const run = useDrivenApp(() => serveNext(app.dir, { command: ['npm', 'start', '--', '-p', '0', '-H', '127.0.0.1'], underRun: true }));

    it('reports each leak by its Next.js route and the line of the app source that acquired it; healthy routes report nothing', () => {
      expectLeaksOfTheApp(run.ended.report, run.answers, app.dir);
    });

    it('exits 1 with the summary, and leaves no process of npm or Next running', async () => {
      const { served, ended } = run;
      expect(ended.status, ended.output).toBe(1);
      expect(ended.output).toMatch(/leakwatch: \d+ responses .*1 leaked response, 4 leaked connections/);
      expect(ended.output).toContain(`${path.join(app.dir, 'app/api/leak/[id]/route.js')}:7:`);
      expect(served.tree.length, 'leakwatch, npm, sh and next-server').toBeGreaterThanOrEqual(3);
      await sleep(200);
      expect(served.tree.filter(isAlive)).toEqual([]);
    });

    it('shows no frame of Node, Next or a library as the app frames of the summary', () => {
      const { ended } = run;
      const summary = ended.output.slice(ended.output.indexOf('Leaked connections'));
      const shown = summary.split('\n').filter((line) => /^\s+at /.test(line));
      expect(shown.length).toBeGreaterThanOrEqual(4);
      for (const line of shown) expect(line).not.toMatch(/node:|node_modules|next[\\/]dist|_runtime\.js/);
    });
  });

  describe('when the standalone server runs (node --enable-source-maps --import leakwatch/register .next/standalone/server.js)', () => {
    const run = useDrivenApp(async () =>
      serveNext(app.dir, {
        command: [process.execPath, '--enable-source-maps', '--import', REGISTER, '.next/standalone/server.js'],
        env: { PORT: String(await freePort()), HOSTNAME: '127.0.0.1' },
        underRun: false,
      }),
    );

    it('reports the same leaks by route, with sites in the app source', () => {
      expectLeaksOfTheApp(run.ended.report, run.answers, app.dir);
    });
  });
});

describe('Next.js 16, when the app makes Next bundle pg (transpilePackages) and hands it over with instrumentPg(pg)', () => {
  let app: AppBuild;
  let served: Served;
  let answer: Answer;
  let ended: Ended;
  beforeAll(async () => {
    app = await nextBundledPgApp();
    served = await serveNext(app.dir, { command: ['npm', 'start', '--', '-p', '0', '-H', '127.0.0.1'], underRun: true });
    await warmUp(served.port, ['/api/report/7']);
    answer = await get(served.port, '/api/report/draft');
    await get(served.port, '/api/report/7');
    await sleep(CONNECTION_THRESHOLD_MS + 600);
    ended = await served.stop();
  }, 600_000);
  afterAll(() => served?.kill());

  it('follows the bundled copy: the client kept in its transaction is reported by route and source line', () => {
    expect(answer.status).toBe(409);
    expect(ended.status, ended.output).toBe(1);
    expect(ended.report.leakedConnections).toEqual([
      expect.objectContaining({ kind: 'pg', state: 'idle-in-transaction', reason: 'held-after-response-closed', ownerPath: '/api/report/draft', ownerRoute: '/api/report/[id]' }),
    ]);
    expect(site(ended.report.leakedConnections[0])).toMatch(source(app.dir, 'app/api/report/[id]/route.js', 7));
  });
});
