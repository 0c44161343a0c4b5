import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentPg } from '../../src/index.js';
import { closeActivityReaders } from '../../src/pg/index.js';
import { configure, expectNoLeaks, findLeaks, LeakError } from '../../src/vitest/index.mjs';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';

// These tests leak on purpose and check by hand; the automatic after-test check would fail them.
configure({ auto: false, settleMs: 300 });

let server: http.Server;
let port: number;
let undoPg: () => void;
let pool: pg.Pool;
const kept: pg.PoolClient[] = [];
/** Paths the server has received, so a test waits for its request rather than guessing how long it takes. */
const arrived = new Set<string>();
const arrival = (path: string) => waitUntil(() => arrived.has(path), 3000, `${path} to reach the server`);
beforeAll(async () => {
  undoPg = instrumentPg(pg);
  pool = new pg.Pool({ connectionString: process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test', max: 2, leakwatchName: 'vitest-db' });
  server = http.createServer(async (req, res) => {
    arrived.add(req.url ?? '');
    if (req.url === '/late') return void setTimeout(() => res.end('late'), 100);
    if (req.url?.startsWith('/orders')) {
      const client = await pool.connect();
      kept.push(client);
      await client.query('BEGIN');
      return res.end('ordered'); // BUG: neither COMMIT nor release()
    }
    if (req.url?.startsWith('/never') || req.url?.startsWith('/health')) return;
    res.end('ok');
  });
  port = await listen(server);
});
afterAll(async () => {
  for (const client of kept) client.release(true);
  await pool.end();
  await close(server);
  undoPg();
  closeActivityReaders();
});

describe('findLeaks()', () => {
  it('returns the response this test left open, once', async () => {
    fireAndForget(port, '/never?token=x');
    await arrival('/never?token=x');
    const leaks = await findLeaks();
    expect(leaks).toEqual([expect.objectContaining({ type: 'response', method: 'GET', path: '/never', reason: 'open-at-exit' })]);
    expect(await findLeaks()).toEqual([]);
  });

  it('does not charge this test with what an earlier test left', async () => {
    expect(await request(port, '/ok')).toMatchObject({ status: 200 });
    expect(await findLeaks()).toEqual([]);
  });

  it('lets in-flight work settle before deciding', async () => {
    const reply = request(port, '/late');
    await arrival('/late');
    expect(await findLeaks()).toEqual([]);
    expect(await reply).toMatchObject({ body: 'late' });
  });

  it('ignores routes and predicates it is told to', async () => {
    fireAndForget(port, '/health');
    fireAndForget(port, '/never/2');
    await Promise.all([arrival('/health'), arrival('/never/2')]);
    expect(await findLeaks({ ignoreRoutes: ['/health'], ignore: (leak) => leak.type === 'response' && leak.path === '/never/2' })).toEqual([]);
  });
});

describe('expectNoLeaks()', () => {
  it('throws a LeakError whose message is the readable report', async () => {
    fireAndForget(port, '/never/3?secret=1');
    await arrival('/never/3?secret=1');
    const error = await expectNoLeaks().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeakError);
    expect((error as LeakError).message).toMatch(/this test left 1 leak behind[\s\S]*GET \/never\/3: still open at exit \[open-at-exit\]/);
    expect((error as LeakError).message).not.toContain('secret');
  });

  it("says what the server thinks of a stranded connection, as docs/ci.md shows", async () => {
    expect(await request(port, '/orders?token=x')).toMatchObject({ status: 200 });
    const error = await expectNoLeaks().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeakError);
    expect((error as LeakError).message).toMatch(
      /pg \d+:pg\d+ on vitest-db: idle-in-transaction for [\d.]+ m?s, held [\d.]+ m?s \[held-after-response-closed\]\n {2}owned by \d+:r\d+, GET \/orders, closed\n {2}server says: pid \d+, idle in transaction for [\d.]+ m?s\n {2}acquired at [^\n]*find-leaks\.test\.ts:\d+:\d+\n {4}at /,
    );
  });
});
