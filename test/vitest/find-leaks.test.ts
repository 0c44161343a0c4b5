import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configure, expectNoLeaks, findLeaks, LeakError } from '../../src/vitest/index.mjs';
import { close, fireAndForget, listen, request, sleep } from '../support/http.js';

// These tests leak on purpose and check by hand; the automatic after-test check would fail them.
configure({ auto: false, settleMs: 300 });

let server: http.Server;
let port: number;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/late') return void setTimeout(() => res.end('late'), 100);
    if (req.url?.startsWith('/never') || req.url?.startsWith('/health')) return;
    res.end('ok');
  });
  port = await listen(server);
});
afterAll(() => close(server));

describe('findLeaks()', () => {
  it('returns the response this test left open, once', async () => {
    fireAndForget(port, '/never?token=x');
    await sleep(20);
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
    await sleep(10);
    expect(await findLeaks()).toEqual([]);
    expect(await reply).toMatchObject({ body: 'late' });
  });

  it('ignores routes and predicates it is told to', async () => {
    fireAndForget(port, '/health');
    fireAndForget(port, '/never/2');
    await sleep(20);
    expect(await findLeaks({ ignoreRoutes: ['/health'], ignore: (leak) => leak.type === 'response' && leak.path === '/never/2' })).toEqual([]);
  });
});

describe('expectNoLeaks()', () => {
  it('throws a LeakError whose message is the readable report', async () => {
    fireAndForget(port, '/never/3?secret=1');
    await sleep(20);
    const error = await expectNoLeaks().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeakError);
    expect((error as LeakError).message).toMatch(/this test left 1 leak behind[\s\S]*GET \/never\/3: still open at exit \[open-at-exit\]/);
    expect((error as LeakError).message).not.toContain('secret');
  });
});
