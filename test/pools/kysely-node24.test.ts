import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Report } from '../../src/report/json.js';
import { fixture, leakwatch } from '../support/cli.js';
import { lineOf } from './support.js';

/**
 * kysely 0.29 (the current release) declares Node ≥ 22, so the main suite runs kysely 0.28 (the
 * newest for Node 20, kysely.test.ts) and this file runs 0.29 (`kysely029`) under
 * `leakwatch run` on a Node 24 binary: LEAKWATCH_TEST_NODE_24, or the Node running the suite if it
 * is 22 or later. Without one it is skipped, and says so in its name.
 */
const node24 = process.env.LEAKWATCH_TEST_NODE_24 || (Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : undefined);
const title = node24 === undefined ? 'kysely 0.29 on Node ≥ 22 (skipped: no such Node here; set LEAKWATCH_TEST_NODE_24 to a node binary)' : 'kysely 0.29 on Node ≥ 22';

describe.skipIf(node24 === undefined)(title, () => {
  describe('leakwatch run -- node24 fixtures/kysely-app.mjs', () => {
    it('exits 0 on the healthy traffic, and 1 with the controlled transaction left open, owned by /orders at the app’s line', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-kysely029-'));
      const run = (name: string, env: NodeJS.ProcessEnv) =>
        leakwatch(['run', '--report', path.join(dir, name), '--connection-threshold', '300ms', '--', node24!, fixture('kysely-app.mjs')], { env: { FIXTURE_KYSELY: 'kysely029', ...env } });
      const [healthy, leaky] = await Promise.all([run('healthy.json', {}), run('leaky.json', { FIXTURE_LEAKY: '1' })]);

      expect(healthy.stdout).toMatch(/kysely-app: node v(2[2-9]|[3-9]\d)\.\d+\.\d+, kysely 0\.29\./);
      expect(healthy.status, healthy.stderr).toBe(0);
      const clean = JSON.parse(readFileSync(path.join(dir, 'healthy.json'), 'utf8')) as Report;
      expect(clean.summary).toMatchObject({ responses: 24, leakedResponses: 0, leakedConnections: 0 });

      expect(leaky.status, leaky.stderr).toBe(1);
      const [leak, ...others] = (JSON.parse(readFileSync(path.join(dir, 'leaky.json'), 'utf8')) as Report).leakedConnections;
      expect(others).toEqual([]);
      expect(leak).toMatchObject({ ownerPath: '/orders', state: 'idle-in-transaction', reason: 'held-after-response-closed', pool: expect.stringMatching(/:5432\//) });
      expect(leak.acquisitionSite).toMatch(lineOf('kysely-app.mjs', 'const order = await db.startTransaction().execute();'));
    });
  });
});
