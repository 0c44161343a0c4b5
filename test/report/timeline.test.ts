import { describe, expect, it } from 'vitest';
import type { LeakedConnection, LeakedResponse, Report, TimelineEvent } from '../../src/report/json.js';
import { connectionTimeline, formatDuration, responseTimeline, timelineSvg } from '../../src/report/timeline.js';

const T0 = Date.parse('2026-11-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const events = (...list: Array<[number, TimelineEvent['event']]>): TimelineEvent[] => list.map(([ms, event]) => ({ at: at(ms), event }));

function reportEndingAt(ms: number): Report {
  return {
    schemaVersion: 1,
    tool: { name: 'leakwatch', version: '0' },
    startedAt: at(0),
    endedAt: at(ms),
    thresholds: { responseMs: 1000, connectionMs: 500 },
    summary: { responses: 1, aborted: 0, leakedResponses: 1, leakedConnections: 0, resolved: 0 },
    leakedResponses: [],
    leakedConnections: [],
    resolved: [],
    processes: [],
  };
}

const response = (reason: LeakedResponse['reason'], list: TimelineEvent[]): LeakedResponse => ({
  id: '1:r1', method: 'GET', path: '/a', route: null, reason, startedAt: at(0), ageMs: 0, endOverrides: [], connections: [], pendingCommands: [], events: list,
});

const connection = (list: TimelineEvent[], owner: TimelineEvent[], extra: Partial<LeakedConnection> = {}): LeakedConnection => ({
  id: '1:pg1', kind: 'pg', pool: 'db', state: 'idle', reason: 'held-after-response-closed', heldMs: 0, idleMs: 0, owner: '1:r1', ownerMethod: 'GET', ownerPath: '/a', ownerRoute: null, ownerState: 'closed', acquiredAt: null, server: null, events: list, ownerEvents: owner, ...extra,
});

describe('responseTimeline()', () => {
  describe('when a response wrote at a check and then stalled', () => {
    it('draws the threshold one response threshold after that check', () => {
      const t = responseTimeline(response('unclosed', events([0, 'started'], [1000, 'wrote'], [2001, 'leaked'])), [], reportEndingAt(2500))!;
      expect(t.threshold).toMatchObject({ at: T0 + 2000, drawn: true });
      expect(t.reported!.at).toBe(T0 + 2001);
      expect(t.lanes[0].spans.map((s) => s.state)).toEqual(['open', 'stalled']);
    });
  });

  describe('when the process exited long before the threshold', () => {
    it('does not stretch the drawing to a threshold that was never reached', () => {
      const r = response('open-at-exit', events([0, 'started'], [50, 'leaked']));
      const t = responseTimeline(r, [], { ...reportEndingAt(50), thresholds: { responseMs: 30_000, connectionMs: 500 } })!;
      expect(t.threshold).toMatchObject({ drawn: false });
      expect(t.end - t.start).toBeLessThan(1000);
      expect(timelineSvg(t, 'x')).not.toContain('class="threshold"');
    });
  });

  describe('when the run went on long after the leak', () => {
    it('cuts the drawing and says how much later the run ended', () => {
      const t = responseTimeline(response('unclosed', events([0, 'started'], [1001, 'leaked'])), [], reportEndingAt(3_600_000))!;
      expect(t.end - t.start).toBeLessThan(2000);
      expect(t.ranOnFor).toBeGreaterThan(3_500_000);
      expect(timelineSvg(t, 'x')).toContain(`still open when the run ended, ${formatDuration(t.ranOnFor)} later`);
    });
  });
});

describe('connectionTimeline()', () => {
  describe('when its owner was aborted and it stayed idle', () => {
    it('draws the abort on the owner lane, each state span, and the threshold a connection threshold after the abort', () => {
      const c = connection(events([0, 'acquired'], [0, 'busy'], [5, 'idle'], [506, 'leaked']), events([0, 'started'], [6, 'aborted']));
      const t = connectionTimeline(c, reportEndingAt(800))!;
      expect(t.lanes.map((l) => l.kind)).toEqual(['response', 'connection']);
      expect(t.lanes[0].marks).toEqual([expect.objectContaining({ event: 'aborted', at: T0 + 6, label: 'aborted' })]);
      expect(t.lanes[1].spans.map((s) => [s.state, s.from - T0])).toEqual([['busy', 0], ['idle', 5]]);
      expect(t.threshold).toMatchObject({ at: T0 + 506, drawn: true });
      const svg = timelineSvg(t, 'x');
      expect(svg).toContain('class="mark mark-aborted"');
      expect(svg).toContain('class="threshold"');
    });
  });

  describe('when its history dropped older events', () => {
    it('draws the time before the first kept event as unknown', () => {
      const c = connection(events([0, 'acquired'], [300, 'busy'], [310, 'idle'], [900, 'leaked']), events([0, 'started'], [400, 'finished']), { eventsDropped: 40 });
      const t = connectionTimeline(c, reportEndingAt(1000))!;
      expect(t.lanes[1].spans.map((s) => s.state)).toEqual(['unknown', 'busy', 'idle']);
    });
  });

  describe('when the server answered', () => {
    it("adds the server's view: its state for as long as it said, ending when it answered", () => {
      const c = connection(events([0, 'acquired'], [0, 'idle'], [506, 'leaked'], [520, 'confirmed']), events([0, 'started'], [6, 'finished']), {
        server: { pid: 9, state: 'idle in transaction', stateAgeMs: 500 },
      });
      const server = connectionTimeline(c, reportEndingAt(800))!.lanes[2];
      expect(server).toMatchObject({ kind: 'server', label: 'PostgreSQL says', sublabel: 'pid 9 · idle in transaction' });
      expect(server.spans.map((s) => [s.from - T0, s.to - T0])).toEqual([[20, 520]]);
    });
  });
});
