import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers, freePort, redisAnswers, redisNotUp, waitForRedis } from '../../src/cli/services.js';
import { startOwnRedis, type OwnRedis } from '../support/node-redis.js';
import { REDIS_URL } from '../support/redis.js';

// How the demo, `leakwatch run` and the tests tell a redis-server they started is up: by a PING
// answered, since a process given the port meanwhile would accept connections too.
describe('redisAnswers', () => {
  let impostor: http.Server;
  let impostorPort: number;
  let guarded: OwnRedis;
  beforeAll(async () => {
    impostor = http.createServer((_req, res) => res.end('not Redis'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    impostorPort = (impostor.address() as AddressInfo).port;
    guarded = await startOwnRedis(['--requirepass', 'a-password']);
  });
  afterAll(async () => {
    impostor.close();
    await guarded.stop();
  });

  it('is true for Redis, with or without a password asked', async () => {
    const shared = new URL(REDIS_URL);
    expect(await redisAnswers(shared.hostname, Number(shared.port || 6379))).toBe(true);
    expect(await redisAnswers('127.0.0.1', guarded.port)).toBe(true);
  });

  it('is false for a server that accepts connections but is not Redis, and for a closed port', async () => {
    expect(await answers('127.0.0.1', impostorPort)).toBe(true);
    expect(await redisAnswers('127.0.0.1', impostorPort, 500)).toBe(false);
    expect(await redisAnswers('127.0.0.1', await freePort(), 500)).toBe(false);
  });

  it('is waited for by waitForRedis, which gives up at once when the redis-server it waits on exits', async () => {
    // A redis-server given the impostor's port cannot listen and exits. Waited on for a minute, longer
    // than the test may take: only giving up at its exit ends the wait in time.
    const child = spawn('redis-server', ['--port', String(impostorPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    expect(await waitForRedis(child, impostorPort, 60_000)).toBe(false);
    expect(child.exitCode).not.toBeNull();
    expect(redisNotUp(child, impostorPort, 60_000)).toBe(`redis-server exited (${child.exitCode}) before answering on 127.0.0.1:${impostorPort}: is the port another process's now?`);
    expect(await waitForRedis(child, guarded.port, 10_000, redisAnswers)).toBe(false); // an exited child is not waited on
  });
});
