import { describe, expect, it } from 'vitest';
import { mergeReports, type Report } from '../../src/report/json.js';
import { unfollowedLibrariesWarning } from '../../src/report/unfollowed.js';

/** The part one process writes for `leakwatch run`, reduced to what these tests vary. */
function part(pid: number, libraries: string[] | undefined, connections: { pg: number; redis: number } | undefined): Report {
  return {
    schemaVersion: 1,
    tool: { name: 'leakwatch', version: '0.0.0' },
    startedAt: new Date(0).toISOString(),
    endedAt: new Date(1000).toISOString(),
    thresholds: { responseMs: 300, connectionMs: 300 },
    summary: { responses: 2, aborted: 1, leakedResponses: 1, leakedConnections: 1, resolved: 1, ...(connections === undefined ? {} : { connections }) },
    leakedResponses: [],
    leakedConnections: [],
    resolved: [],
    processes: [{ pid, argv: [`/app/worker-${pid}.js`], ...(libraries === undefined ? {} : { libraries }) }],
  } as Report;
}

describe('unfollowedLibrariesWarning(parts)', () => {
  it('names each process that loaded a library whose connections leakwatch followed none of, in one line', () => {
    const warning = unfollowedLibrariesWarning([part(1, ['pg', 'redis'], { pg: 4, redis: 0 }), part(2, ['ioredis'], { pg: 0, redis: 3 }), part(3, ['pg'], { pg: 0, redis: 0 })]);
    expect(warning).toBe(
      'leakwatch: warning: process 1 (/app/worker-1.js) loaded redis; process 3 (/app/worker-3.js) loaded pg, but leakwatch followed none of their connections: ' +
        'either none were made, or that version is not supported (see "Supported versions" in leakwatch\'s README).',
    );
  });

  it('is silent when every library loaded had connections followed, or none was loaded', () => {
    expect(unfollowedLibrariesWarning([part(1, ['pg', 'ioredis', 'redis'], { pg: 1, redis: 1 }), part(2, [], { pg: 0, redis: 0 })])).toBeNull();
    expect(unfollowedLibrariesWarning([])).toBeNull();
  });

  it('counts by kind: ioredis and redis both make Redis connections', () => {
    expect(unfollowedLibrariesWarning([part(1, ['ioredis', 'redis'], { pg: 0, redis: 2 })])).toBeNull();
    expect(unfollowedLibrariesWarning([part(1, ['ioredis', 'redis'], { pg: 0, redis: 0 })])).toMatch(/loaded ioredis and redis, but/);
  });

  it('says nothing of parts written by a leakwatch that did not record libraries', () => {
    expect(unfollowedLibrariesWarning([part(1, undefined, undefined)])).toBeNull();
  });
});

describe('mergeReports(parts) › summary.connections', () => {
  it('adds up the connections followed, by kind, and keeps each process with the libraries it loaded', () => {
    const merged = mergeReports([part(1, ['pg'], { pg: 4, redis: 0 }), part(2, ['redis'], { pg: 0, redis: 3 }), part(3, undefined, undefined)], {
      startedAt: 0,
      endedAt: 1000,
      responseMs: 300,
      connectionMs: 300,
    });
    expect(merged.summary).toEqual({ responses: 6, aborted: 3, leakedResponses: 3, leakedConnections: 3, resolved: 3, connections: { pg: 4, redis: 3 } });
    expect(merged.processes.map((p) => [p.pid, p.libraries])).toEqual([
      [1, ['pg']],
      [2, ['redis']],
      [3, undefined],
    ]);
  });
});
