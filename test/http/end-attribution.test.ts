import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, type EndOverride, type Started } from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { endOverridesOf } from '../../src/http/end-attribution.js';
import { createApp } from '../../fixtures/express-error-reporter.mjs';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 250 });
});
afterAll(() => started.stop());

const fixture = fileURLToPath(new URL('../../fixtures/express-error-reporter.mjs', import.meta.url));
const assignmentLine = readFileSync(fixture, 'utf8').split('\n').findIndex((l) => l.includes('res.end = function reportingEnd')) + 1;

describe('res.end attribution', () => {
  describe('when an error reporter swallows end on a 5xx', () => {
    it('reports the response unclosed with the file:line of the replacement, called but not through', async () => {
      const reported: unknown[] = [];
      const server = http.createServer(createApp({ report: (e: unknown) => reported.push(e) }));
      const port = await listen(server);
      expect(await request(port, '/users/1')).toMatchObject({ status: 200 });
      fireAndForget(port, '/users/boom?token=hunter2');
      await waitUntil(() => getRuntime()!.ledger.totals.leakedResponses === 1, 3000, 'the swallowed response to leak');
      const [leak] = reportOf(getRuntime()!.ledger).leakedResponses;
      expect(leak).toMatchObject({ method: 'GET', path: '/users/boom', route: '/users/:id', reason: 'unclosed' });
      expect(leak.endOverrides).toEqual([{ at: expect.stringContaining(`express-error-reporter.mjs:${assignmentLine}:`), called: true, calledThrough: false }]);
      expect(reported).toHaveLength(1);
      await close(server);
    });
  });

  describe('when the app ends a response after its client left', () => {
    it('still calls the app’s replacement, as Node would, and reports it called', async () => {
      let called = 0;
      let overrides: EndOverride[] = [];
      let ended!: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      const server = http.createServer((req, res) => {
        const end = res.end;
        res.end = function (this: http.ServerResponse, ...args: unknown[]) {
          called++;
          return (end as (...a: unknown[]) => unknown).apply(this, args);
        } as typeof res.end;
        overrides = endOverridesOf(res);
        res.write('first bytes');
        res.once('close', () =>
          setTimeout(() => {
            res.end('too late');
            ended();
          }, 20),
        );
      });
      const port = await listen(server);
      expect(await request(port, '/', { abortAfterMs: 50 })).toBe('aborted');
      await done;
      expect(called).toBe(1);
      expect(overrides).toEqual([{ at: expect.stringContaining('end-attribution.test.ts:'), called: true, calledThrough: true }]);
      await close(server);
    });
  });

  describe('when replacements call through', () => {
    it('marks every layer called and called through, and the response finishes', async () => {
      const server = http.createServer((req, res) => {
        const first = res.end;
        res.end = function (this: http.ServerResponse, ...args: unknown[]) {
          return (first as (...a: unknown[]) => unknown).apply(this, args);
        } as typeof res.end;
        const second = res.end;
        res.end = function (this: http.ServerResponse, ...args: unknown[]) {
          return (second as (...a: unknown[]) => unknown).apply(this, args);
        } as typeof res.end;
        res.end('layered');
        overrides = endOverridesOf(res);
      });
      let overrides: EndOverride[] = [];
      const port = await listen(server);
      expect(await request(port, '/')).toEqual({ status: 200, body: 'layered' });
      expect(overrides).toEqual([
        { at: expect.stringContaining('end-attribution.test.ts:'), called: true, calledThrough: true },
        { at: expect.stringContaining('end-attribution.test.ts:'), called: true, calledThrough: true },
      ]);
      await close(server);
    });

    it('forgets a replacement that is put back', async () => {
      const server = http.createServer((req, res) => {
        const original = res.end;
        res.end = (() => res) as unknown as typeof res.end;
        res.end = original; // restored before use
        res.end('restored');
      });
      const port = await listen(server);
      expect(await request(port, '/')).toEqual({ status: 200, body: 'restored' });
      await close(server);
    });
  });
});
