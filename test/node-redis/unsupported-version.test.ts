import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadedLibraries } from '../../src/core/module-hooks.js';
import { instrumentNodeRedis, start, type Started } from '../../src/index.js';
import { getRuntime } from '../support/internals.js';
import { leakwatch } from '../support/cli.js';
import { REDIS_URL, heldFor, type NodeRedisClient } from '../support/node-redis.js';

// @redis/client 1.4.2 (redis 4.5) installed under the alias redis-client-1-4: its command queue has
// no isPubSubActive yet, by which leakwatch finds a client's queue.
const require = createRequire(import.meta.url);
let started: Started;
const logs: string[] = [];
beforeAll(() => {
  started = start({ log: (line) => logs.push(line) });
});
afterAll(() => started.stop());

describe('redis before 4.6 (@redis/client 1.4)', () => {
  it('is left alone, with one warning that says which versions are supported, and still counts as loaded', async () => {
    const old = require('redis-client-1-4') as { createClient(options: object): NodeRedisClient };
    const client = old.createClient({ url: REDIS_URL });
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    expect((client.connect as { __wrapped?: boolean }).__wrapped).toBeUndefined();
    expect(heldFor(getRuntime()!.ledger, client)).toEqual([]);
    await client.quit();
    expect(logs.filter((line) => line.includes('@redis/client 1.4.2'))).toEqual([
      expect.stringMatching(/is not instrumented: leakwatch supports redis 4\.6–4\.7 \(@redis\/client 1\.5–1\.6\), 5 and 6/),
    ]);
    expect(loadedLibraries()).toContain('redis');
  });

  it('is refused by instrumentNodeRedis() with that sentence', () => {
    expect(() => instrumentNodeRedis(require('redis-client-1-4'))).toThrow(/^instrumentNodeRedis\(redis\): @redis\/client 1\.4\.2 at .* is not instrumented: leakwatch supports redis 4\.6/);
  });

  it('makes leakwatch run warn that it followed none of the connections of the process that used it', async () => {
    const app = `
      const { createClient } = require('redis-client-1-4');
      const http = require('node:http');
      const client = createClient({ url: ${JSON.stringify(REDIS_URL)} });
      const server = http.createServer(async (req, res) => res.end(String(await client.incr('leakwatch-old-version'))));
      client.connect().then(() => server.listen(0, () => {
        http.get('http://127.0.0.1:' + server.address().port, (res) => { res.resume(); res.on('end', () => { server.close(); client.quit(); }); });
      }));`;
    const { status, stderr } = await leakwatch(['run', '--', process.execPath, '-e', app]);
    expect(status, stderr).toBe(0);
    expect(stderr).toMatch(/connections followed: 0 pg, 0 redis/);
    expect(stderr).toMatch(/leakwatch: warning: process \d+ loaded redis, but leakwatch followed none of its connections/);
  });
});
