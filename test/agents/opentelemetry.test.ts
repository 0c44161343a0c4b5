import { describe, expect } from 'vitest';
import { CURRENT_RELEASES, NODE_LINE } from './support/packages.js';
import type { Recorded } from './support/scenario.js';
import { describeAgentScenarios } from './support/suite.js';

function recordsApp(recorded: Recorded): void {
  const spans = recorded.byName!;
  expect(spans['GET /users/:id']).toMatchObject({ count: 2, routes: ['/users/:id'], roots: 2 });
  expect(spans['GET /held/:id']).toMatchObject({ count: 1, routes: ['/held/:id'], roots: 1 });
  expect(spans['pg.query:SELECT test']).toMatchObject({ count: 5, dbSystems: ['postgresql'], roots: 0 });
  expect(spans.incr).toMatchObject({ count: 2, dbSystems: ['redis'], roots: 0 });
  expect(spans.subscribe).toMatchObject({ count: 1, dbSystems: ['redis'], roots: 0 });
  // No database span without a parent: a lookup of leakwatch's would be one.
  for (const [name, span] of Object.entries(spans)) if (span.dbSystems.length > 0) expect({ name, roots: span.roots }).toEqual({ name, roots: 0 });
}

describe.skipIf(!CURRENT_RELEASES)(`OpenTelemetry 0.301 (NodeSDK: http, express, pg, ioredis), ${NODE_LINE} [needs Node ≥ 22.15: skipped on Node 20, which runs 0.223]`, () => {
  describeAgentScenarios('otel', { recordsApp });
});

describe.skipIf(CURRENT_RELEASES)(`OpenTelemetry 0.223 (NodeSDK: http, express, pg, ioredis), ${NODE_LINE} [the newest Node 20 runs: skipped on Node ≥ 22.15, which runs 0.301]`, () => {
  describeAgentScenarios('otel', { recordsApp });
});
