import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch } from '../support/cli.js';
import { REDIS_URL } from '../support/redis.js';

// The app's own ioredis (5.x, imported as ESM by the fixtures) instrumented by leakwatch/register.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-redis-run-'));
});

const run = (name: string) => {
  const file = path.join(dir, `${name}.json`);
  const exit = leakwatch(['run', '--report', file, '--response-threshold', '300ms', '--connection-threshold', '300ms', '--', process.execPath, fixture(name)], {
    env: { REDIS_URL },
  });
  return exit.then((result) => ({ ...result, report: JSON.parse(readFileSync(file, 'utf8')) as Report }));
};

describe('leakwatch run with an app that uses ioredis', () => {
  it('names every Redis connection a request left open, with its owner, state and what the server says', async () => {
    const { status, stderr, report } = await run('redis-leaky.mjs');
    expect(status, stderr).toBe(1);
    const byPath = Object.fromEntries(report.leakedConnections.map((c) => [c.ownerPath, c]));
    expect(Object.keys(byPath).sort()).toEqual(['/counter', '/events', '/events/silent']);
    expect(byPath['/counter']).toMatchObject({ kind: 'redis', reason: 'held-after-response-closed', state: 'idle', ownerState: 'closed' });
    expect(byPath['/events']).toMatchObject({ reason: 'held-after-response-closed', state: 'subscriber', ownerState: 'closed' });
    expect(byPath['/events/silent']).toMatchObject({ reason: 'held-by-leaked-response', state: 'subscriber', ownerState: 'open' });
    for (const connection of report.leakedConnections) {
      expect(connection.acquiredAt).toMatch(/redis-leaky\.mjs:\d+/);
      expect(connection.server).toMatchObject({ clientId: expect.any(Number), state: connection.state });
    }
    expect(report.leakedResponses.map((r) => [r.path, r.connections])).toEqual([['/events/silent', [byPath['/events/silent'].id]]]);
    expect(JSON.stringify(report) + stderr).not.toMatch(/hunter2/);
  });

  it('reports nothing for an app that uses Redis well', async () => {
    const { status, stderr, report } = await run('redis-healthy.mjs');
    expect(status, stderr).toBe(0);
    expect(report.summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0 });
    expect(report.summary.responses).toBeGreaterThan(20);
  });
});
