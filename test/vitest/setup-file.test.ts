import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../support/cli.js';
import { folderDependencies, installedFolder } from '../support/installed-folder.js';
import { packedProject } from '../support/pack.js';

const APP_TEST = `
import http from 'node:http';
import pg from 'pg';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, test } from 'vitest';

const pool = new pg.Pool({ connectionString: process.env.LEAKWATCH_TEST_PG_URL, max: 4 });
const subscribers = [];
let server;
let base;

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    if (req.url === '/ok') return res.end('ok');
    if (req.url === '/db-ok') {
      const client = await pool.connect();
      try {
        await client.query('SELECT 1');
      } finally {
        client.release();
      }
      return res.end('ok');
    }
    if (req.url === '/forgets-release') {
      const client = await pool.connect();
      await client.query('SELECT $1::text AS secret', ['hunter2']);
      return res.end('done'); // BUG: client.release() is never called
    }
    if (req.url === '/never') return; // BUG: never answers
    if (req.url === '/node-redis-ok') {
      const client = createClient({ url: process.env.LEAKWATCH_TEST_REDIS_URL });
      await client.connect();
      try {
        return res.end(String(await client.incr('leakwatch-vitest:visits')));
      } finally {
        await client.close();
      }
    }
    if (req.url === '/node-redis-subscribe') {
      const subscriber = createClient({ url: process.env.LEAKWATCH_TEST_REDIS_URL });
      subscribers.push(subscriber);
      await subscriber.connect();
      await subscriber.subscribe('news', () => {});
      return res.end('subscribed'); // BUG: the subscriber is never closed
    }
    if (req.url === '/subscribe') {
      const subscriber = new Redis(process.env.LEAKWATCH_TEST_REDIS_URL);
      subscribers.push(subscriber);
      await subscriber.subscribe('news');
      return res.end('subscribed'); // BUG: the subscriber is never quit
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = 'http://127.0.0.1:' + server.address().port;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  for (const s of subscribers) s.disconnect();
  await pool.end().catch(() => {});
});

test('clean: plain response', async () => {
  expect(await (await fetch(base + '/ok')).text()).toBe('ok');
});

test('clean: pool checkout released in finally', async () => {
  expect(await (await fetch(base + '/db-ok')).text()).toBe('ok');
});

test('leaky: forgets release()', async () => {
  expect(await (await fetch(base + '/forgets-release')).text()).toBe('done');
});

test('leaky: request never answered before the test ends', async () => {
  fetch(base + '/never').catch(() => {});
  await new Promise((r) => setTimeout(r, 50));
});

test('clean: a per-request node-redis client closed in finally', async () => {
  expect(Number(await (await fetch(base + '/node-redis-ok')).text())).toBeGreaterThan(0);
});

test('leaky: keeps a per-request node-redis subscriber', async () => {
  expect(await (await fetch(base + '/node-redis-subscribe')).text()).toBe('subscribed');
});

test('leaky: keeps a per-request Redis subscriber', async () => {
  expect(await (await fetch(base + '/subscribe')).text()).toBe('subscribed');
});
`;

/**
 * The vitest majors leakwatch/vitest is a peer of: 4, this repository's own, and 5, which needs
 * Node 22.12 or later and so lives in a folder of its own (test/vitest/vitest5, installed on first
 * use), linked into the project in place of the root's.
 */
const VITEST5 = fileURLToPath(new URL('./vitest5', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const VITEST5_RUNS = major > 22 || (major === 22 && minor >= 12);
const rootVitest = (createRequire(import.meta.url)('vitest/package.json') as { version: string }).version;
const vitest5 = folderDependencies(VITEST5).vitest;

describe(`leakwatch/vitest in setupFiles of a project on vitest ${rootVitest} that installed the packed package`, () => {
  setupFileTests(rootVitest, async () => ({}));
});

describe.skipIf(!VITEST5_RUNS)(`leakwatch/vitest in setupFiles of a project on vitest ${vitest5} (Node 22.12 and later) that installed the packed package`, () => {
  setupFileTests(vitest5, async () => {
    await installedFolder(VITEST5);
    return { vitest: path.join(VITEST5, 'node_modules') };
  });
});

/** The project's tests run by vitest `version` (linked from `linkFrom()`'s folders, else the root's), and what each must show. */
function setupFileTests(version: string, linkFrom: () => Promise<Record<string, string>>): void {
  let results: { testResults: Array<{ assertionResults: Array<{ title: string; status: string; failureMessages: string[] }> }> };
  let output: string;
  let ran = '';

  beforeAll(async () => {
    const dir = packedProject(
      {
        'package.json': JSON.stringify({ name: 'app', type: 'module', private: true }),
        'vitest.config.mjs': `export default { test: { setupFiles: ['leakwatch/vitest'], include: ['app.test.mjs'] } };`,
        'app.test.mjs': APP_TEST,
      },
      ['vitest', 'pg', 'ioredis', 'redis'],
      await linkFrom(),
    );
    ran = (JSON.parse(readFileSync(path.join(dir, 'node_modules/vitest/package.json'), 'utf8')) as { version: string }).version;
    const exit = await runCommand(process.execPath, [path.join(dir, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=json', '--outputFile=results.json'], {
      cwd: dir,
      timeoutMs: 90_000,
    });
    output = exit.stdout + exit.stderr;
    expect(exit.status, output).toBe(1);
    results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
  }, 240_000); // with vitest 5 installed on first use

  const byTitle = (title: string) => results.testResults[0].assertionResults.find((t) => t.title === title)!;

  it('loads without source-map warnings (the maps carry their sources)', () => {
    expect(output).not.toMatch(/Sourcemap for .* points to/);
  });

  it('passes the clean tests', () => {
    expect(byTitle('clean: plain response').status).toBe('passed');
    expect(byTitle('clean: pool checkout released in finally').status).toBe('passed');
    expect(byTitle('clean: a per-request node-redis client closed in finally').status).toBe('passed');
  });

  it('fails the test that forgot release(), naming the pg connection and its request', () => {
    const test = byTitle('leaky: forgets release()');
    expect(test.status).toBe('failed');
    const message = test.failureMessages.join('\n');
    expect(message).toMatch(/pg .*held-after-response-closed/);
    expect(message).toMatch(/owned by \d+:r\d+, GET \/forgets-release, closed/);
    expect(message).toMatch(/server says: pid \d+, idle for [\d.]+ m?s/);
    expect(message).not.toContain('hunter2');
  });

  it('fails the test whose request never got an answer', () => {
    const test = byTitle('leaky: request never answered before the test ends');
    expect(test.status).toBe('failed');
    expect(test.failureMessages.join('\n')).toMatch(/GET \/never.*open-at-exit/);
  });

  it('fails the test that kept a per-request Redis subscriber', () => {
    const test = byTitle('leaky: keeps a per-request Redis subscriber');
    expect(test.status).toBe('failed');
    expect(test.failureMessages.join('\n')).toMatch(/redis .*subscriber/);
  });

  it('fails the test that kept a per-request node-redis subscriber', () => {
    const test = byTitle('leaky: keeps a per-request node-redis subscriber');
    expect(test.status).toBe('failed');
    expect(test.failureMessages.join('\n')).toMatch(/redis .*subscriber/);
    expect(test.failureMessages.join('\n')).toContain('/node-redis-subscribe');
  });

  it('fails exactly those four', () => {
    expect(results.testResults[0].assertionResults.filter((t) => t.status === 'failed')).toHaveLength(4);
  });

  it(`ran them on vitest ${version}`, () => {
    expect(ran).toBe(version);
  });
}
