import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentResponse, start, type Started } from '../../src/index.js';
import { close, fireAndForget, listen, request, sleep, waitUntil } from '../support/http.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 300, connectionThreshold: 300 });
});
afterAll(() => started.stop());

const ledger = () => started.runtime.ledger;
const leakedPaths = () => ledger().leaks.filter((l) => 'probe' in l && l.leak?.resolvedAt === 0).map((l) => (l as { detail: { path: string } }).detail.path);

describe('node:http responses found through diagnostics_channel', () => {
  it('runs the handler in the response context and reports only the response that never closes, on a keep-alive connection', async () => {
    const seen: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      setImmediate(() => {
        seen.push(currentResponse()?.id);
        if (req.url?.startsWith('/hang')) return; // never answers
        res.end('ok');
      });
    });
    const port = await listen(server);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect(await request(port, '/a?secret=1', { agent })).toMatchObject({ status: 200 });
    expect(await request(port, '/b', { agent })).toMatchObject({ status: 200 });
    fireAndForget(port, '/hang?token=hunter2', agent);
    await waitUntil(() => ledger().totals.leakedResponses === 1, 3000, 'the hanging response to leak');
    expect(leakedPaths()).toEqual(['/hang']);
    expect(seen.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(seen).size).toBe(3);
    agent.destroy();
    await close(server);
  });
});
