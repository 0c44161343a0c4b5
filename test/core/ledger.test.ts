import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/core/ledger.js';
import type { ConnectionRecord, ResponseProbe, ResponseRecord } from '../../src/core/records.js';

/** A response whose progress the test controls. */
class FakeResponse {
  written = 0;
}

const probe: ResponseProbe = {
  progress: (t) => (t as FakeResponse).written,
  method: () => 'GET',
  path: () => '/p',
  route: () => null,
  endOverrides: () => [],
};

function makeLedger(options: { response?: number; connection?: number; madeWhileModuleLoads?: (connection: ConnectionRecord) => boolean } = {}) {
  let now = 1_000_000;
  let current: ResponseRecord | undefined;
  const logs: string[] = [];
  const ledger = new Ledger({
    responseThresholdMs: options.response ?? 100,
    connectionThresholdMs: options.connection ?? 50,
    maxReportedLeaks: 3,
    onFailure: (what, error) => logs.push(`${what}: ${String(error)}`),
    currentResponse: () => current,
    clock: () => now,
    timer: false,
    madeWhileModuleLoads: options.madeWhileModuleLoads,
  });
  return {
    ledger,
    logs,
    advance(ms: number) {
      now += ms;
      ledger.sweep(now);
    },
    within<T>(response: ResponseRecord | undefined, fn: () => T): T {
      const before = current;
      current = response;
      try {
        return fn();
      } finally {
        current = before;
      }
    },
  };
}

describe('Ledger', () => {
  describe('when a response does nothing for the response threshold', () => {
    it('reports it unclosed, and resolved once it finishes', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      t.advance(99);
      expect(r.leak).toBeNull();
      t.advance(1);
      expect(r.leak?.reason).toBe('unclosed');
      expect(t.ledger.totals.leakedResponses).toBe(1);
      t.ledger.closeResponse(r, 'finished');
      expect(r.leak?.resolvedAt).toBeGreaterThan(0);
      expect(t.ledger.totals).toMatchObject({ leakedResponses: 0, resolved: 1, responses: 1 });
    });

    it('keeps a leak that closes by abort unresolved', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      t.advance(100);
      t.ledger.closeResponse(r, 'aborted');
      expect(r.leak?.resolvedAt).toBe(0);
      expect(t.ledger.totals).toMatchObject({ leakedResponses: 1, aborted: 1 });
    });
  });

  describe('a self-releasing checkout (pool.query())', () => {
    it('stays busy until released whatever the protocol says, keeps no history, and keeps its response from stalling', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true, selfReleasing: true }));
      expect(c).toMatchObject({ selfReleasing: true, state: 'busy', history: null, owner: r });
      t.ledger.connectionIdle(c, 'idle-in-transaction');
      t.ledger.setIdleState(c, 'idle');
      expect(c.state).toBe('busy');
      t.advance(250); // past two response thresholds: waiting on it, not stalled
      expect(r.leak).toBeNull();
      t.ledger.releaseConnection(c);
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed'); // with nothing left to wait on, it is stalled
      expect(c.leak).toBeNull();
    });
  });

  describe('when a response keeps writing', () => {
    it('is not stalled, and leaks one threshold after its last progress', () => {
      const t = makeLedger();
      const target = new FakeResponse();
      const r = t.ledger.openResponse(target, probe);
      for (let i = 0; i < 5; i++) {
        target.written += 10;
        t.advance(100);
      }
      expect(r.leak).toBeNull();
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
    });
  });

  describe('when a response waits on a busy connection it owns', () => {
    it('is not stalled; once the connection is idle the response and connection leak together', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      expect(c.owner).toBe(r);
      t.ledger.connectionBusy(c);
      t.advance(300);
      expect(r.leak).toBeNull();
      t.ledger.connectionIdle(c, 'idle-in-transaction');
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
      expect(c.leak?.reason).toBe('held-by-leaked-response');
      expect(c.state).toBe('idle-in-transaction');
      t.ledger.releaseConnection(c);
      expect(c.leak?.resolvedAt).toBeGreaterThan(0);
      expect(r.connections?.length).toBe(0);
    });

    it('links a connection that goes idle after its owner leaked', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
      // the stuck handler goes on and connects after the leak was found
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false, busy: true }));
      expect(c.leak).toBeNull();
      t.ledger.connectionIdle(c);
      expect(c.leak?.reason).toBe('held-by-leaked-response');
    });

    it('counts operations on shared connections as waiting, not stalled', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      t.ledger.beginOperation(r);
      t.advance(500);
      expect(r.leak).toBeNull();
      t.ledger.endOperation(r);
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
    });
  });

  describe('when a closed response leaves a connection held', () => {
    it('reports held-after-response-closed a connection threshold after the close', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.advance(10);
      t.ledger.closeResponse(r, 'aborted');
      t.advance(49);
      expect(c.leak).toBeNull();
      t.advance(1);
      expect(c.leak?.reason).toBe('held-after-response-closed');
    });

    it('waits while the connection is busy and reports once it has been idle', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.connectionBusy(c);
      t.ledger.closeResponse(r, 'finished');
      t.advance(200);
      expect(c.leak).toBeNull();
      t.ledger.connectionIdle(c);
      t.advance(50);
      expect(c.leak?.reason).toBe('held-after-response-closed');
    });

    it('reports nothing when the connection is released in time', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.closeResponse(r, 'finished');
      t.advance(20);
      t.ledger.releaseConnection(c);
      t.advance(1000);
      expect(c.leak).toBeNull();
      expect(t.ledger.held.size).toBe(0);
    });
  });

  describe('when a held connection’s socket goes away', () => {
    it('stays held in state closed, waiting on nothing, leaks by the same rules and resolves when released', () => {
      const t = makeLedger();
      const closed: string[] = [];
      t.ledger.observe({ connectionClosed: (c) => void closed.push(c.id) });
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.connectionBusy(c);
      t.ledger.closeResponse(r, 'finished');
      t.advance(10);
      t.ledger.connectionClosed(c, { how: 'terminated-by-server', code: '57P01' });
      t.ledger.connectionClosed(c, { how: 'socket-error', code: 'ECONNRESET' }); // the first word stands
      expect(c.state).toBe('closed');
      expect(c.closed).toEqual({ how: 'terminated-by-server', code: '57P01', at: c.idleSince });
      expect(closed).toEqual([c.id]);
      expect(t.ledger.held.has(c)).toBe(true);
      t.advance(50);
      expect(c.leak?.reason).toBe('held-after-response-closed');
      t.ledger.releaseConnection(c);
      expect(c.leak?.resolvedAt).toBeGreaterThan(0);
      expect(t.ledger.held.size).toBe(0);
    });

    it('is held by a leaked response at once, since nothing more can come on it', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.connectionBusy(c);
      t.advance(100);
      expect(r.leak).toBeNull(); // waiting on a busy connection is progress
      t.ledger.connectionClosed(c, { how: 'socket-closed', code: null });
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
      expect(c.leak?.reason).toBe('held-by-leaked-response');
    });
  });

  describe('connections with no owner', () => {
    it('reports a pool checkout idle past the threshold, counting from its last use', () => {
      const t = makeLedger();
      const c = t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true });
      expect(c.owner).toBeNull();
      t.advance(30);
      t.ledger.connectionBusy(c);
      t.ledger.connectionIdle(c);
      t.advance(30);
      expect(c.leak).toBeNull();
      t.advance(20);
      expect(c.leak?.reason).toBe('idle-past-threshold');
    });

    it('never reports a dedicated connection made outside a request', () => {
      const t = makeLedger();
      const c = t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false });
      t.ledger.setIdleState(c, 'subscriber');
      t.advance(10_000);
      t.ledger.finalize();
      expect(c.leak).toBeNull();
    });
  });

  describe('finalize()', () => {
    it('reports open responses open-at-exit and the connections their requests hold, thresholds aside', () => {
      const t = makeLedger();
      const open = t.ledger.openResponse(new FakeResponse(), probe);
      const closed = t.ledger.openResponse(new FakeResponse(), probe);
      const a = t.within(open, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      const b = t.within(closed, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.connectionBusy(a);
      t.ledger.closeResponse(closed, 'finished');
      t.ledger.finalize();
      expect(open.leak?.reason).toBe('open-at-exit');
      expect(a.leak?.reason).toBe('held-by-leaked-response');
      expect(b.leak?.reason).toBe('held-after-response-closed');
    });

    it('limits itself to the responses it is told to', () => {
      const t = makeLedger();
      const one = t.ledger.openResponse(new FakeResponse(), probe);
      const two = t.ledger.openResponse(new FakeResponse(), probe);
      t.ledger.finalize((response) => response === two);
      expect(one.leak).toBeNull();
      expect(two.leak?.reason).toBe('open-at-exit');
    });
  });

  it('keeps at most maxReportedLeaks in detail and counts the rest', () => {
    const t = makeLedger();
    for (let i = 0; i < 5; i++) t.ledger.openResponse(new FakeResponse(), probe);
    t.advance(100);
    expect(t.ledger.leaks).toHaveLength(3);
    expect(t.ledger.totals).toMatchObject({ leakedResponses: 5, droppedLeaks: 2 });
  });

  it('sweeps at a cost that depends on what is due, not on what is open', () => {
    const t = makeLedger();
    const probeCalls = { n: 0 };
    const counting: ResponseProbe = { ...probe, progress: () => (probeCalls.n++, 0) };
    for (let i = 0; i < 10_000; i++) t.ledger.openResponse(new FakeResponse(), counting);
    probeCalls.n = 0;
    t.advance(50);
    expect(probeCalls.n).toBe(0);
    t.advance(50);
    expect(probeCalls.n).toBe(10_000);
  });

  it('survives a probe that throws, and logs it', () => {
    const t = makeLedger();
    const broken: ResponseProbe = { ...probe, method: () => { throw new Error('boom'); } };
    const r = t.ledger.openResponse(new FakeResponse(), broken);
    t.advance(100);
    expect(r.leak?.reason).toBe('unclosed');
    expect(t.logs.join('\n')).toMatch(/boom/);
  });
});

describe('Ledger › a pool checkout with no owner that waits for notifications (LISTEN)', () => {
  it('is not idle-past-threshold while it listens, and is once it stops', () => {
    const t = makeLedger();
    const c = t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true });
    t.ledger.setIdleState(c, 'subscriber');
    t.advance(500);
    expect(c.leak).toBeNull();
    t.ledger.connectionBusy(c);
    t.ledger.connectionIdle(c, 'idle'); // UNLISTEN
    t.advance(50);
    expect(c.leak?.reason).toBe('idle-past-threshold');
  });
});

describe('Ledger › totals.connections', () => {
  it('counts every connection acquired, by kind, released or not, so a report can say that it saw none', () => {
    const t = makeLedger();
    expect(t.ledger.totals.connections).toEqual({ pg: 0, redis: 0 });
    const checkouts = [0, 1, 2].map(() => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
    const redis = t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false });
    for (const c of checkouts) t.ledger.releaseConnection(c);
    t.ledger.releaseConnection(redis);
    t.ledger.releaseConnection(redis); // twice is one release
    expect(t.ledger.totals.connections).toEqual({ pg: 3, redis: 1 });
  });
});

describe('Ledger › event history', () => {
  const events = (item: { history: { entries(): Array<{ at: number; event: string; value: number }> } | null }, from = 1_000_000) =>
    item.history?.entries().map(({ at, event, value }) => (value ? `+${at - from} ${event} ${value}` : `+${at - from} ${event}`)) ?? null;

  describe('when a connection owned by a response goes busy and idle', () => {
    it('records each state it entered, with when', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true, busy: true }));
      t.advance(5);
      t.ledger.connectionIdle(c, 'idle');
      t.ledger.connectionBusy(c);
      t.advance(3);
      t.ledger.connectionIdle(c, 'idle-in-transaction');
      t.advance(2);
      t.ledger.setIdleState(c, 'idle-in-transaction'); // no transition: nothing recorded
      t.ledger.connectionIdle(c); // idle again while idle: nothing recorded
      expect(events(c)).toEqual(['+0 busy', '+5 idle', '+5 busy', '+8 idle-in-transaction']);
    });
  });

  describe('when a connection cannot leak (made outside any request, not a pool checkout)', () => {
    it('records nothing for it', () => {
      const t = makeLedger();
      const shared = t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false });
      t.ledger.connectionBusy(shared);
      t.ledger.connectionIdle(shared);
      expect(shared.history).toBeNull();
    });
  });

  describe('when a connection is released without leaking', () => {
    it('lets go of its history, and the next checkout reuses it from the start', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const first = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.connectionBusy(first);
      t.ledger.connectionIdle(first);
      const history = first.history;
      t.ledger.releaseConnection(first);
      expect(first.history).toBeNull();
      t.advance(7);
      const second = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      expect(second.history).toBe(history);
      expect(events(second)).toEqual(['+7 idle']);
    });
  });

  describe('when a connection is released', () => {
    it('lets go of its request and acquisition stack once heard, unless it leaked: the report of the resolved leak names them', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const stack = { stack: 'Error\n    at app.js:1:1' };
      const heard: Array<[ResponseRecord | null, unknown]> = [];
      t.ledger.observe({ connectionReleased: (c) => void heard.push([c.owner, c.stack]) });
      const kept = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true, stack }));
      const released = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true, stack }));
      t.ledger.releaseConnection(released);
      expect([released.owner, released.stack]).toEqual([null, null]);
      t.ledger.closeResponse(r, 'aborted');
      t.advance(50);
      expect(kept.leak?.reason).toBe('held-after-response-closed');
      t.ledger.releaseConnection(kept);
      expect(kept.leak?.resolvedAt).toBeGreaterThan(0);
      expect(kept.owner).toBe(r);
      expect(kept.stack).toBe(stack);
      // Observers hear both whole.
      expect(heard).toEqual([
        [r, stack],
        [r, stack],
      ]);
    });
  });

  describe('when a connection leaks', () => {
    it('keeps its history after it is released, for the report of the resolved leak', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      t.ledger.closeResponse(r, 'aborted');
      t.advance(50);
      expect(c.leak?.reason).toBe('held-after-response-closed');
      t.ledger.releaseConnection(c);
      expect(events(c)).toEqual(['+0 idle']);
    });
  });

  describe('when a connection changes state more often than its history holds', () => {
    it('keeps the newest transitions and counts the dropped ones', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false }));
      for (let i = 0; i < 100; i++) {
        t.ledger.connectionBusy(c);
        t.advance(1);
        t.ledger.connectionIdle(c);
      }
      const kept = c.history!.entries();
      expect(kept).toHaveLength(c.history!.capacity);
      expect(c.history!.dropped).toBe(201 - c.history!.capacity);
      expect(events(c)!.at(-1)).toBe('+100 idle');
    });
  });

  describe('when a response outlives the threshold', () => {
    it('records what each check saw it do: wrote (how much) or waited', () => {
      const t = makeLedger();
      const target = new FakeResponse();
      const r = t.ledger.openResponse(target, probe);
      const c = t.within(r, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      expect(r.history).toBeNull();
      target.written += 120;
      t.advance(100);
      t.ledger.connectionBusy(c);
      t.advance(100);
      t.ledger.connectionIdle(c);
      t.advance(100);
      expect(r.leak?.reason).toBe('unclosed');
      expect(events(r)).toEqual(['+100 wrote 120', '+200 waited']);
    });

    it('records nothing for a response that closes within it', () => {
      const t = makeLedger();
      const r = t.ledger.openResponse(new FakeResponse(), probe);
      t.advance(99);
      t.ledger.closeResponse(r, 'finished');
      expect(r.history).toBeNull();
    });
  });
});

describe('Ledger › a connection another request uses', () => {
  describe('when it is a dedicated connection (a bare client, a Redis client) a request made', () => {
    it('is shared from then on: owned by nobody, and its leak withdrawn', () => {
      const t = makeLedger();
      const first = t.ledger.openResponse(new FakeResponse(), probe);
      const client = t.within(first, () => t.ledger.acquireConnection({ kind: 'redis', pool: 'r', pooled: false }));
      t.ledger.closeResponse(first, 'finished');
      t.advance(60);
      expect(client.leak?.reason).toBe('held-after-response-closed');
      const later = t.ledger.openResponse(new FakeResponse(), probe);
      t.ledger.beginOperation(later, { connection: client, command: 'get', startedAt: t.ledger.now() });
      expect(client.owner).toBeNull();
      expect(first.connections?.includes(client)).toBe(false);
      expect(client.leak?.resolvedAt).toBeGreaterThan(0);
      expect(t.ledger.totals.leakedConnections).toBe(0);
      t.advance(200);
      expect(client.leak?.reason).toBe('held-after-response-closed'); // not reported again
      expect(t.ledger.totals.leakedConnections).toBe(0);
    });
  });

  describe('when it is a pool checkout', () => {
    it('stays its requester’s: a checkout is a lease', () => {
      const t = makeLedger();
      const first = t.ledger.openResponse(new FakeResponse(), probe);
      const checkout = t.within(first, () => t.ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true }));
      const later = t.ledger.openResponse(new FakeResponse(), probe);
      t.ledger.beginOperation(later, { connection: checkout, command: 'query', startedAt: t.ledger.now() });
      expect(checkout.owner).toBe(first);
    });
  });

  describe('a checkout whose owner was taken without the module check (ownerUnverified)', () => {
    const MODULE_STACK = { stack: 'Error\n    at Module._compile (node:internal/modules/cjs/loader:1554:14)' };
    const REQUEST_STACK = { stack: 'Error\n    at handler (/app/routes.js:3:9)' };
    const checkout = (stack: { stack: string }) => ({ kind: 'pg' as const, pool: 'main', pooled: true, stack, ownerUnverified: true });
    const byModule = (connection: ConnectionRecord) => connection.stack === MODULE_STACK;

    it('is asked about only when a leak rule would blame its owner, never for a checkout released in its request', () => {
      const asked: ConnectionRecord[] = [];
      const t = makeLedger({ madeWhileModuleLoads: (c) => (asked.push(c), byModule(c)) });
      const response = t.ledger.openResponse(new FakeResponse(), probe);
      const connection = t.within(response, () => t.ledger.acquireConnection(checkout(REQUEST_STACK)));
      expect(connection.owner).toBe(response);
      t.ledger.releaseConnection(connection);
      t.ledger.closeResponse(response, 'finished');
      t.advance(1000);
      expect(asked).toEqual([]);
    });

    it("is the module's when a module's top-level code made it: no held-after-response-closed leak, and the rule for checkouts with no owner from then on", () => {
      const t = makeLedger({ madeWhileModuleLoads: byModule });
      const response = t.ledger.openResponse(new FakeResponse(), probe);
      const listener = t.within(response, () => t.ledger.acquireConnection(checkout(MODULE_STACK)));
      t.ledger.connectionIdle(listener, 'subscriber');
      t.ledger.closeResponse(response, 'finished');
      t.advance(60);
      expect(listener.leak).toBeNull();
      expect(listener.owner).toBeNull();
      expect(response.connections?.length ?? 0).toBe(0);
      t.advance(1000); // a subscriber checkout with no owner is never a leak by itself
      expect(listener.leak).toBeNull();
      expect(t.ledger.totals.leakedConnections).toBe(0);
    });

    it('stays its request’s, and leaks, when the request made it', () => {
      const t = makeLedger({ madeWhileModuleLoads: byModule });
      const response = t.ledger.openResponse(new FakeResponse(), probe);
      const connection = t.within(response, () => t.ledger.acquireConnection(checkout(REQUEST_STACK)));
      t.ledger.closeResponse(response, 'aborted');
      t.advance(60);
      expect(connection.leak?.reason).toBe('held-after-response-closed');
      expect(connection.owner).toBe(response);
    });

    it("is the module's when its owner leaks, too", () => {
      const t = makeLedger({ madeWhileModuleLoads: byModule });
      const response = t.ledger.openResponse(new FakeResponse(), probe);
      const warmUp = t.within(response, () => t.ledger.acquireConnection(checkout(MODULE_STACK)));
      t.advance(150);
      expect(response.leak?.reason).toBe('unclosed');
      expect(warmUp.leak).toBeNull();
      expect(warmUp.owner).toBeNull();
    });
  });
});
