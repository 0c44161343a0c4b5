import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { responseOf } from '../../src/http/response-of.js';

export async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface Reply {
  status: number;
  body: string;
}

/** A GET (or other method) that resolves with the whole reply; `abortAfterMs` destroys it instead. */
export function request(
  port: number,
  path: string,
  options: { method?: string; agent?: http.Agent; abortAfterMs?: number; body?: string } = {},
): Promise<Reply | 'aborted'> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: options.agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve('aborted'));
    });
    req.on('error', (error) => (options.abortAfterMs !== undefined ? resolve('aborted') : reject(error)));
    if (options.abortAfterMs !== undefined) {
      setTimeout(() => {
        req.destroy();
        resolve('aborted');
      }, options.abortAfterMs);
    }
    req.end(options.body);
  });
}

/** Sends a request and never waits for the reply (for handlers that never answer). */
export function fireAndForget(port: number, path: string, agent?: http.Agent): http.ClientRequest {
  const req = http.request({ host: '127.0.0.1', port, path, agent });
  req.on('error', () => {});
  req.end();
  return req;
}

export async function waitUntil(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Blocks the loop from the check phase until `until` (after calling `first`), so that the next loop
 * turn starts with its timers, a deadline's among them, before its I/O: as after a long synchronous
 * stretch in an I/O callback, or a process the CPU starved.
 */
export const blockLoopUntil = (until: number, first: () => void = () => {}) =>
  new Promise<void>((resolve) =>
    setImmediate(() => {
      first();
      while (Date.now() < until);
      resolve();
    }),
  );

/** Keeps, by URL, the leakwatch record of each response `server` sees (listener runs first). */
export function recordResponsesByUrl(server: http.Server, into: Map<string, import('../../src/core/records.js').ResponseRecord>): void {
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const response = responseOf(res);
    if (response !== undefined) into.set(req.url ?? '', response);
  });
}
