import { beforeAll, describe, expect, it } from 'vitest';
import { agentPackages } from './packages.js';
import { ORDERS, closedPort, runScenario, swallowSite, type AgentName, type Recorded, type ScenarioResult } from './scenario.js';

export interface AgentSuiteOptions {
  /** What the agent alone must have recorded, so that the comparisons are not of empty data. */
  recordsApp(recorded: Recorded): void;
  /** Compares what the agent recorded beside leakwatch with what it recorded alone; equality by default. */
  sameRecording?(withLeakwatch: Recorded, alone: Recorded): void;
}

/** The leaks leakwatch must still find whatever agent is loaded, however: both planted ones, with owners and sites. */
export function expectPlantedLeaks(result: ScenarioResult): void {
  const report = result.report!;
  expect(report.leakedResponses).toHaveLength(1);
  expect(report.leakedResponses[0]).toMatchObject({ method: 'GET', path: '/boom', route: '/boom', reason: 'unclosed' });
  expect(report.leakedResponses[0].endOverrides).toEqual([{ at: expect.stringMatching(swallowSite()), called: true, calledThrough: false }]);
  const byKind = Object.fromEntries(report.leakedConnections.map((c) => [c.kind, c]));
  expect(report.leakedConnections).toHaveLength(2);
  expect(byKind.pg).toMatchObject({
    reason: 'held-after-response-closed',
    state: 'idle',
    ownerPath: '/held/4',
    ownerRoute: '/held/:id',
    ownerState: 'closed',
    acquiredAt: expect.stringMatching(/app\.cjs:\d+/),
    server: { pid: expect.any(Number), state: 'idle' },
  });
  expect(byKind.redis).toMatchObject({
    reason: 'held-after-response-closed',
    state: 'subscriber',
    ownerPath: '/watch/5',
    ownerRoute: '/watch/:id',
    ownerState: 'closed',
    server: { clientId: expect.any(Number), state: 'subscriber' },
  });
  // leakwatch logged no failure of its own
  expect(result.stderr).not.toMatch(/failed \(\d+ times?\), the app goes on/);
}

/**
 * The scenarios of one agent: alone, then beside leakwatch in each of the four orders, each in a
 * process of its own on real PostgreSQL and Redis.
 */
export function describeAgentScenarios(agent: AgentName, options: AgentSuiteOptions): void {
  let alone: ScenarioResult;
  const beside = new Map<string, ScenarioResult>();

  beforeAll(async () => {
    const dir = agent === 'patcher' ? '' : (await agentPackages()).dir; // the patcher needs no package of its own
    const port = await closedPort();
    // Two processes at a time: each spends much of its life waiting on thresholds and sockets.
    const queue = [null, ...ORDERS];
    const next = async (): Promise<void> => {
      for (let order = queue.shift(); order !== undefined; order = queue.shift()) {
        const result = await runScenario(agent, order, dir, port);
        if (order === null) alone = result;
        else beside.set(order.name, result);
      }
    };
    await Promise.all([next(), next()]);
  }, 180_000);

  it('records the app’s requests, queries and commands when alone (what the comparisons compare)', () => {
    expect(alone.report).toBeNull();
    options.recordsApp(alone.recorded!);
  });

  describe.each(ORDERS.map((order) => [order.name]))('when %s', (name) => {
    it('answers every request byte for byte as without leakwatch (status, headers but Date, body)', () => {
      const result = beside.get(name)!;
      expect(result.responses).toHaveLength(alone.responses.length);
      expect(result.responses).toEqual(alone.responses);
    });

    it('records what it records without leakwatch', () => {
      const result = beside.get(name)!;
      if (options.sameRecording) options.sameRecording(result.recorded!, alone.recorded!);
      else expect(result.recorded).toEqual(alone.recorded);
    });

    it('leaves leakwatch finding the swallowed res.end at its line, and the pg client and the subscriber never let go, with their owners', () => {
      expectPlantedLeaks(beside.get(name)!);
    });
  });
}
