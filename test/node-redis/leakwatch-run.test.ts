import { describe, expect, it } from 'vitest';
import { fixture } from '../support/cli.js';
import { NODE_REDIS_MODULES, REDIS_URL, expectConnectionsLeftByLeakyFixture } from '../support/node-redis.js';
import { runWithReport } from '../support/run-report.js';

// The app's own node-redis, imported as ESM by the fixtures, instrumented by leakwatch/register.
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runWithReport(args, { REDIS_URL, ...env });

describe.each(NODE_REDIS_MODULES)('leakwatch run with an app on %s', (_name, _redis, id) => {
  it('names every connection a request left open, with its owner, state and what the server says, and the command a response waits on', async () => {
    const { status, stderr, report } = await run([fixture('node-redis-leaky.mjs')], { NODE_REDIS_MODULE: id });
    expect(status, stderr).toBe(1);
    const byPath = expectConnectionsLeftByLeakyFixture(report, 'node-redis-leaky.mjs');
    const responses = Object.fromEntries(report.leakedResponses.map((r) => [r.path, r]));
    expect(Object.keys(responses).sort()).toEqual(['/events/silent', '/jobs/next']);
    expect(responses['/events/silent']).toMatchObject({ reason: 'unclosed', connections: [byPath['/events/silent'].id], pendingCommands: [] });
    expect(responses['/jobs/next']).toMatchObject({ reason: 'open-at-exit', connections: [], pendingCommands: [{ command: 'blpop', connection: expect.any(String) }] });
    expect(stderr).toContain('waits on BLPOP');
    expect(report.summary.connections.redis).toBeGreaterThanOrEqual(4); // the shared client and the three leaked
    expect(report.processes.map((p) => p.libraries)).toEqual([['redis']]);
    expect(JSON.stringify(report) + stderr).not.toMatch(/hunter2/);
    expect(stderr).not.toMatch(/warning/);
  });

  it('reports nothing for an app that uses node-redis well, and says how many connections it followed', async () => {
    const { status, stderr, report } = await run([fixture('node-redis-healthy.mjs')], { NODE_REDIS_MODULE: id });
    expect(status, stderr).toBe(0);
    expect(report.summary).toMatchObject({ leakedResponses: 0, leakedConnections: 0, connections: { pg: 0 } });
    expect(report.summary.responses).toBeGreaterThan(20);
    expect(report.summary.connections.redis).toBeGreaterThanOrEqual(6); // start-up clients, per-request clients, leases
    expect(stderr).toMatch(/connections followed: 0 pg, \d+ redis/);
    expect(stderr).not.toMatch(/warning/);
  });
});

describe('leakwatch run with a process that loads node-redis but makes no connection leakwatch follows', () => {
  it('warns once that it followed none, since a report without leaks cannot tell "none" from "not seen"', async () => {
    const app = `
      import 'redis';
      import 'redis4';
      import http from 'node:http';
      const server = http.createServer((req, res) => res.end('ok')).listen(0, () => {
        http.get('http://127.0.0.1:' + server.address().port, (res) => { res.resume(); res.on('end', () => server.close()); });
      });`;
    const { status, stderr, report } = await run(['--input-type=module', '-e', app]);
    expect(status, stderr).toBe(0);
    expect(report.summary.connections).toEqual({ pg: 0, redis: 0 });
    expect(report.processes.map((p) => p.libraries)).toEqual([['redis']]);
    const warnings = stderr.split('\n').filter((line) => line.includes('warning'));
    expect(warnings).toEqual([
      expect.stringMatching(/^leakwatch: warning: process \d+ loaded redis, but leakwatch followed none of its connections: either none were made, or that version is not supported/),
    ]);
  });
});
