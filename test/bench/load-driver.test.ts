import { type ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

// The bench's load process (bench/lib/load-driver.mjs): it keeps its connections to each server
// open between bursts, so it must cope with a server that closed them.
const DRIVER = fileURLToPath(new URL('../../bench/lib/load-driver.mjs', import.meta.url));

interface Figures {
  figures?: Array<{ durationMs: number }>;
  error?: string;
}

let driver: ChildProcess | null = null;
let stderr = '';
const servers: http.Server[] = [];

async function startDriver(): Promise<ChildProcess> {
  stderr = '';
  const child = fork(DRIVER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  await new Promise((resolve) => child.once('message', resolve));
  return (driver = child);
}

function burst(child: ChildProcess, port: number, requests: number): Promise<Figures> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as Figures));
    child.send({ burst: [{ name: 'test server', port, path: '/', requests, concurrency: 4 }] });
  });
}

/** A server on `port` (0: any) that counts the requests it answers. */
async function listen(port = 0): Promise<{ server: http.Server; port: number; answered: () => number }> {
  let answered = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    answered++;
    res.end('ok');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, answered: () => answered };
}

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

afterEach(async () => {
  driver?.send('exit');
  driver = null;
  for (const server of servers.splice(0)) if (server.listening) await stop(server);
});

describe('the bench load driver', () => {
  it('opens again a kept-alive connection the server closed between two bursts, and says so', async () => {
    const child = await startDriver();
    const { server, port, answered } = await listen();
    expect((await burst(child, port, 20)).figures).toHaveLength(1);
    server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await burst(child, port, 20);
    expect(second.error).toBeUndefined();
    expect(answered()).toBe(40);
    expect(stderr).toMatch(/test server \(port \d+\) closed a kept-alive connection after [\d.]+ s idle; opened another/);
  });

  it("gives a server started on a stopped server's port connections of its own once told to forget that port", async () => {
    const child = await startDriver();
    const first = await listen();
    expect((await burst(child, first.port, 20)).figures).toHaveLength(1);
    child.send({ forget: [first.port] });
    await stop(first.server);
    const second = await listen(first.port);
    const figures = await burst(child, second.port, 20);
    expect(figures.error).toBeUndefined();
    expect(second.answered()).toBe(20);
    expect(stderr).toBe('');
  });
});
