import { describe, expect } from 'vitest';
import { NODE_LINE } from './support/packages.js';
import { describeAgentScenarios } from './support/suite.js';

// A patcher that marks nothing and wraps by plain assignment: loaded before leakwatch it is
// beneath leakwatch's wrappers, after it on top. Its counters must not see leakwatch's own
// confirmation lookups (pg_stat_activity, CLIENT LIST), which every scenario with leakwatch makes.
describe(`a plain prototype patcher (pg Client#query, ioredis Redis#sendCommand, ServerResponse#end), ${NODE_LINE}`, () => {
  describeAgentScenarios('patcher', {
    recordsApp(recorded) {
      // 5 queries; 2 CLIENT SETINFO, INFO, 2 INCR, the subscriber's 2 CLIENT SETINFO, INFO and SUBSCRIBE; 7 ends (not /boom's).
      expect(recorded.counts).toEqual({ 'pg Client#query': 5, 'ioredis Redis#sendCommand': 9, 'ServerResponse#end': 7 });
    },
  });
});
