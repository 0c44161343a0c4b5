import { describe, expect } from 'vitest';
import { NODE_LINE } from './support/packages.js';
import type { Recorded } from './support/scenario.js';
import { describeAgentScenarios } from './support/suite.js';

describe(`@sentry/node 11 (tracing on, a transport into memory), ${NODE_LINE}`, () => {
  describeAgentScenarios('sentry', {
    recordsApp(recorded: Recorded) {
      const spans = recorded.byName!;
      expect(spans['segment http.server GET /users/:id']).toMatchObject({ count: 2, routes: ['/users/:id'], roots: 2 });
      expect(spans['segment http.server GET /held/:id']).toMatchObject({ count: 1, routes: ['/held/:id'], roots: 1 });
      expect(spans['span db SELECT']).toMatchObject({ count: 5, dbSystems: ['postgresql'] });
      expect(spans['span db.query incr 127.0.0.1:6379']).toMatchObject({ count: 2, dbSystems: ['redis'] });
    },
  });
});
