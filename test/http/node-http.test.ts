import http from 'node:http';
import net from 'node:net';
import { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentServer, start, wrapHandler, type Started } from '../../src/index.js';
import { setFailureLog } from '../../src/core/guard.js';
import { currentResponse, instrumentEndAttribution, getRuntime } from '../support/internals.js';
import { createServer as createHealthyServer } from '../../fixtures/healthy.mjs';
import { blockLoopUntil, close, fireAndForget, listen, request, sleep, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 300, connectionThreshold: 300 });
});
afterAll(() => started.stop());

const ledger = () => getRuntime()!.ledger;
const leakedPaths = () => reportOf(ledger()).leakedResponses.map((r) => r.path);

describe('node:http responses found through diagnostics_channel', () => {
  it('runs each handler in its response context and reports only the response that never closes, on one keep-alive connection', async () => {
    const before = ledger().totals.leakedResponses;
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
    await waitUntil(() => ledger().totals.leakedResponses === before + 1, 3000, 'the hanging response to leak');
    expect(leakedPaths()).toContain('/hang');
    expect(leakedPaths()).not.toContain('/a');
    expect(JSON.stringify(reportOf(ledger()))).not.toContain('hunter2');
    expect(seen.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(seen).size).toBe(3);
    agent.destroy();
    await close(server);
  });

  describe('when a request comes in on a keep-alive socket before the previous response let go of it', () => {
    it("does not take the previous response's bytes for its progress: it leaks at its first threshold", async () => {
      const server = http.createServer((req, res) => {
        if (req.url === '/hang') return;
        res.end('x'.repeat(300));
      });
      const port = await listen(server);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      await request(port, '/ok', { agent });
      const before = ledger().totals.leakedResponses;
      fireAndForget(port, '/hang', agent);
      await waitUntil(() => ledger().totals.leakedResponses === before + 1, 3000, 'the hanging response to leak');
      const hung = [...ledger().leakedOpen].find((r) => r.detail?.path === '/hang')!;
      // A check that saw progress would have rescheduled it, and said so in its history.
      expect(hung.history?.entries() ?? []).toEqual([]);
      expect(hung.leak!.detectedAt - hung.startedAt).toBeLessThan(2 * ledger().responseThresholdMs);
      agent.destroy();
      await close(server);
    });

    it('nor the bytes a pipelined earlier response writes while it waits for the socket', async () => {
      const server = http.createServer((req, res) => {
        if (req.url === '/hang') return;
        res.writeHead(200, { 'content-length': '600' });
        res.write('x'.repeat(300));
        setTimeout(() => res.end('y'.repeat(300)), 150); // /hang arrived meanwhile and waits for the socket
      });
      const port = await listen(server);
      const before = ledger().totals.leakedResponses;
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitUntil(() => ledger().totals.leakedResponses === before + 1, 3000, 'the hanging response to leak');
      const hung = [...ledger().leakedOpen].find((r) => r.detail?.path === '/hang')!;
      expect(hung.history?.entries() ?? []).toEqual([]);
      expect(hung.leak!.detectedAt - hung.startedAt).toBeLessThan(2 * ledger().responseThresholdMs);
      socket.destroy();
      await close(server);
    });
  });

  it('counts a client abort mid-response as aborted, not as a leak', async () => {
    const server = createHealthyServer();
    const port = await listen(server);
    const { aborted, responses } = ledger().totals;
    const leaked = ledger().totals.leakedResponses;
    expect(await request(port, '/trickle', { abortAfterMs: 150 })).toBe('aborted');
    await waitUntil(() => ledger().totals.aborted === aborted + 1, 2000, 'the abort to be counted');
    expect(ledger().totals.responses).toBe(responses + 1);
    await sleep(400);
    expect(ledger().totals.leakedResponses).toBe(leaked);
    await close(server);
  });

  describe('when the loop is blocked past a deadline', () => {
    it('hears the I/O that came meanwhile before it judges: the reply a handler waited on, come during the block, is progress', async () => {
      // An upstream leakwatch does not follow: a plain socket, whose reply the test sends.
      let upstreamSide: net.Socket | undefined;
      const upstream = net.createServer((socket) => (upstreamSide = socket));
      const upstreamPort = await listen(upstream);
      const server = http.createServer((req, res) => {
        const socket = net.connect(upstreamPort, '127.0.0.1');
        socket.once('data', () => {
          socket.destroy();
          res.end('done');
        });
      });
      const port = await listen(server);
      // A leak resolved by the late close would leave the totals as they were; the metrics count it.
      const leaks: string[] = [];
      const stop = ledger().observe({ responseLeaked: (response) => leaks.push(response.detail?.path ?? '') });
      const reply = request(port, '/waits-upstream');
      await waitUntil(() => upstreamSide !== undefined, 2000, 'the handler to reach its upstream');
      const start = Date.now();
      // The reply reaches the process at once, and the 300 ms deadline passes during the block.
      await blockLoopUntil(start + 600, () => upstreamSide!.end('reply'));
      expect(await reply).toMatchObject({ status: 200, body: 'done' });
      await sleep(50);
      stop();
      expect(leaks).toEqual([]);
      await close(server);
      upstreamSide!.destroy();
      await new Promise((resolve) => upstream.close(resolve));
    });

    it('and a client that aborted during the block is counted aborted, not reported', async () => {
      let handled!: () => void;
      const handling = new Promise<void>((resolve) => (handled = resolve));
      const server = http.createServer((req, res) => {
        const timer = setTimeout(() => res.end('late'), 5000);
        res.on('close', () => clearTimeout(timer));
        handled();
      });
      const port = await listen(server);
      const leaks: string[] = [];
      const stop = ledger().observe({ responseLeaked: (response) => leaks.push(response.detail?.path ?? '') });
      const { aborted } = ledger().totals;
      const req = fireAndForget(port, '/aborted-in-block', new http.Agent());
      await handling;
      const start = Date.now();
      // The client goes at once (its socket is closed), and the 300 ms deadline passes during the
      // block: the server hears of the close after it, and its end of the socket closes a turn later.
      await blockLoopUntil(start + 600, () => req.destroy());
      await waitUntil(() => ledger().totals.aborted === aborted + 1, 2000, 'the abort to be counted');
      stop();
      expect(leaks).toEqual([]);
      await close(server);
    });
  });

  it('does not report server-sent events that write every 200 ms for longer than the threshold', async () => {
    const server = createHealthyServer({ sseMs: 1200 });
    const port = await listen(server);
    const leaked = ledger().totals.leakedResponses;
    const reply = await request(port, '/events');
    expect(reply).toMatchObject({ status: 200 });
    expect((reply as { body: string }).body.match(/data:/g)?.length).toBeGreaterThanOrEqual(5);
    expect(ledger().totals.leakedResponses).toBe(leaked);
  });

  it('reports a response that wrote its headers and then stalled', async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    const port = await listen(server);
    const leaked = ledger().totals.leakedResponses;
    fireAndForget(port, '/partial');
    await waitUntil(() => ledger().totals.leakedResponses === leaked + 1, 3000, 'the stalled response to leak');
    await close(server);
  });
});

describe('instrumentServer(server) and wrapHandler(handler)', () => {
  it('run the handler in the response context, and a response is tracked once whichever way it is found', async () => {
    const ids: Array<string | undefined> = [];
    const handler = wrapHandler((req: http.IncomingMessage, res: http.ServerResponse) => {
      ids.push(currentResponse()?.id);
      res.end('ok');
    });
    const server = http.createServer(handler);
    const undo = instrumentServer(server);
    const twice = instrumentServer(server); // harmless: one patch, two holders
    const port = await listen(server);
    const before = ledger().totals.responses;
    await request(port, '/x');
    await waitUntil(() => ledger().totals.responses >= before + 1, 2000, 'the response to close');
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^\d+:r\d+$/);
    undo();
    expect(Object.prototype.hasOwnProperty.call(server, 'emit')).toBe(true);
    twice();
    expect(Object.prototype.hasOwnProperty.call(server, 'emit')).toBe(false);
    await close(server);
  });
});

describe('patching', () => {
  it('is harmless twice, and only the last holder’s undo restores the original', () => {
    const attributed = () => Object.getPrototypeOf(ServerResponse.prototype) !== http.OutgoingMessage.prototype;
    expect(attributed()).toBe(true); // installed by start()
    const again = instrumentEndAttribution();
    again();
    expect(attributed()).toBe(true); // start() still holds it
    started.stop();
    expect(attributed()).toBe(false);
    expect(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end')).toBeUndefined();
    expect(ServerResponse.prototype.end).toBe(http.OutgoingMessage.prototype.end);
    started = start(); // put back for the other tests
    expect(attributed()).toBe(true);
  });

  it('never lets an exception inside its own hooks reach the app', async () => {
    const logs: string[] = [];
    setFailureLog((m) => logs.push(m));
    const openResponse = ledger().openResponse;
    ledger().openResponse = () => {
      throw new Error('forced failure inside leakwatch');
    };
    try {
      const server = http.createServer((req, res) => res.end('still served'));
      const port = await listen(server);
      expect(await request(port, '/x')).toEqual({ status: 200, body: 'still served' });
      await close(server);
    } finally {
      ledger().openResponse = openResponse;
      setFailureLog(getRuntime()!.config.log);
    }
    expect(logs.join('\n')).toMatch(/forced failure inside leakwatch/);
  });
});
