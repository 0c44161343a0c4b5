import { describe, expect } from 'vitest';
import { CURRENT_RELEASES, NODE_LINE } from './support/packages.js';
import type { Recorded } from './support/scenario.js';
import { describeAgentScenarios } from './support/suite.js';

const TCP = 'tcp.connect';

function recordsApp(recorded: Recorded): void {
  const spans = recorded.byName!;
  expect(spans['express.request']).toMatchObject({ count: 7, routes: ['/held/:id', '/orders/:id', '/users/:id', '/watch/:id'] });
  expect(spans['pg.query']).toMatchObject({ count: 5, dbSystems: ['postgres'], roots: 0 });
  expect(spans['redis.command'].dbSystems).toEqual(['redis']);
}

/**
 * dd-trace traces every TCP connection of the process (its `net` integration), whoever opens it.
 * leakwatch's own confirmation connections, one to PostgreSQL and one to Redis here, show as two
 * `tcp.connect` root spans: no query or command span, nothing else. Every other span is the same.
 */
function sameRecording(withLeakwatch: Recorded, alone: Recorded): void {
  const { [TCP]: tcpBeside, ...restBeside } = withLeakwatch.byName!;
  const { [TCP]: tcpAlone, ...restAlone } = alone.byName!;
  expect(restBeside).toEqual(restAlone);
  expect({ count: tcpBeside.count - tcpAlone.count, roots: tcpBeside.roots - tcpAlone.roots }).toEqual({ count: 2, roots: 2 });
}

describe.skipIf(!CURRENT_RELEASES)(`dd-trace 6 (every integration, agent at a closed port), ${NODE_LINE} [needs Node ≥ 22: skipped on Node 20, which runs dd-trace 5]`, () => {
  describeAgentScenarios('datadog', { recordsApp, sameRecording });
});

describe.skipIf(CURRENT_RELEASES)(`dd-trace 5 (every integration, agent at a closed port), ${NODE_LINE} [the major Node 20 runs: skipped on Node ≥ 22.15, which runs dd-trace 6]`, () => {
  describeAgentScenarios('datadog', { recordsApp, sameRecording });
});
