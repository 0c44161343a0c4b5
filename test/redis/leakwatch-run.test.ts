import { describe, expect, it } from 'vitest';
import { fixture } from '../support/cli.js';
import { REDIS_URL, expectConnectionsLeftByLeakyFixture } from '../support/redis.js';
import { runWithReport } from '../support/run-report.js';

// The app's own ioredis (5.x, imported as ESM by the fixtures) instrumented by leakwatch/register.
const run = (name: string) => runWithReport([fixture(name)], { REDIS_URL });

describe('leakwatch run with an app that uses ioredis', () => {
  it('names every Redis connection a request left open, with its owner, state and what the server says', async () => {
    const { status, stderr, report } = await run('redis-leaky.mjs');
    expect(status, stderr).toBe(1);
    const byPath = expectConnectionsLeftByLeakyFixture(report, 'redis-leaky.mjs');
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
