import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch } from '../support/cli.js';

/**
 * Clients made while requests are served but shared by every request are no leak: those a module's
 * top-level code makes when the module loads during a request (Next.js loads a route's modules on
 * its first request), and a lazy singleton that the first request needing it makes and later
 * requests use. A client made per request and never closed still is one.
 */
describe('clients made during a request but shared', () => {
  it('are never reported, whether a module made them as it loaded (ES module, CommonJS) or a request made one that later requests use; a per-request client still leaks', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-shared-'));
    const file = path.join(dir, 'report.json');
    const exit = await leakwatch(['run', '--report', file, '--response-threshold', '300ms', '--connection-threshold', '300ms', '--', process.execPath, fixture('shared-clients.mjs')], {
      env: { FIXTURE_LINGER_MS: '1200' },
      timeoutMs: 30_000,
    });
    expect(exit.status, exit.stderr).toBe(1);
    const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
    expect(report.summary.responses).toBe(10);
    expect(report.leakedResponses).toEqual([]);
    // Only the control: the ioredis client /leak made and never quit.
    expect(report.leakedConnections).toEqual([expect.objectContaining({ kind: 'redis', ownerPath: '/leak', reason: 'held-after-response-closed' })]);
    // The lazy singleton was the first /lazy request's until a second request used it; nothing is left open either way.
    expect(report.resolved.filter((r) => r.kind === 'pg')).toEqual([]);
  });
});
