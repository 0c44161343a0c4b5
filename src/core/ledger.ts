import { steadyNow, wallOffset } from './clock.js';
import { DeadlineQueue } from './deadline-queue.js';
import { DeadlineTimer } from './deadline-timer.js';
import { HeldList } from './held-list.js';
import { History } from './history.js';
import { listenersOf, notifyListeners, type Listener } from './listeners.js';
import {
  ConnectionRecord,
  OperationList,
  ResponseRecord,
  type ConnectionClosure,
  type ConnectionInit,
  type ConnectionKind,
  type ConnectionLeakReason,
  type IdleState,
  type PendingOperation,
  type ResponseLeakReason,
  type ResponseOutcome,
  type ResponseDetail,
  type ResponseProbe,
} from './records.js';

/** `connection` is no longer among the ones `owner` holds (swapped with the last: no order is kept). */
function forget(owner: ResponseRecord, connection: ConnectionRecord): void {
  const held = owner.connections;
  if (held === null) return;
  const i = held.indexOf(connection);
  if (i < 0) return;
  const last = held.pop()!;
  if (i < held.length) held[i] = last;
}

/** Histories kept for reuse at most; past a burst of checkouts, the others are garbage. */
const MAX_SPARE_HISTORIES = 128;

/** The ledger's limits; `reconfigure()` changes them for what is scheduled from then on. */
export interface LedgerLimits {
  responseThresholdMs: number;
  connectionThresholdMs: number;
  maxReportedLeaks: number;
}

export interface LedgerOptions extends LedgerLimits {
  /** Where a failure of a probe or an observer goes; it must not throw (guard.ts's logFailure). */
  onFailure: (what: string, error: unknown) => void;
  /** The response whose async context we are in, if any. */
  currentResponse: () => ResponseRecord | undefined;
  /**
   * Milliseconds, only ever forward: by default the monotonic clock on the epoch (clock.ts). Tests
   * pass a manual clock, which is then taken for the wall clock too.
   */
  clock?: () => number;
  /** Arm one unref'd timer for the earliest deadline. Tests turn it off and call sweep(). */
  timer?: boolean;
  /**
   * Whether a connection was acquired by a module's top-level code (its acquisition stack says so),
   * asked only of connections acquired with `ownerUnverified`, and only when a leak rule would
   * blame their owner: reading a stack's frames costs microseconds, a checkout's request is almost
   * never the one loading a module, and so the question is put off to the rare leak.
   */
  madeWhileModuleLoads?: (connection: ConnectionRecord) => boolean;
}

/** Called on each transition; observers must not throw (they are guarded anyway). */
export interface LedgerObserver {
  responseOpened?(response: ResponseRecord): void;
  responseClosed?(response: ResponseRecord): void;
  responseLeaked?(response: ResponseRecord): void;
  connectionAcquired?(connection: ConnectionRecord): void;
  connectionReleased?(connection: ConnectionRecord): void;
  connectionClosed?(connection: ConnectionRecord): void;
  connectionLeaked?(connection: ConnectionRecord): void;
  leakResolved?(item: ResponseRecord | ConnectionRecord): void;
}

type LedgerEvent = keyof LedgerObserver;
const LEDGER_EVENTS: readonly LedgerEvent[] = [
  'responseOpened',
  'responseClosed',
  'responseLeaked',
  'connectionAcquired',
  'connectionReleased',
  'connectionClosed',
  'connectionLeaked',
  'leakResolved',
];

export interface LedgerTotals {
  responses: number;
  aborted: number;
  leakedResponses: number;
  leakedConnections: number;
  resolved: number;
  /** Leaks counted but no longer kept in detail (over maxReportedLeaks). */
  droppedLeaks: number;
  /** Connections acquired, by kind: each pg checkout or client connect, each Redis connection or pool lease. */
  connections: Record<ConnectionKind, number>;
}

/**
 * Responses, the connections their requests acquire, and the leak rules (docs/design.md): a state
 * machine and nothing else. It does no I/O and knows no protocol; instrumentations feed it, and
 * observers installed from above (metrics, the leak log, server confirmation, the vitest
 * integration) hear each transition.
 *
 * A response is scheduled at `start + responseThreshold`; when due it is re-scheduled if it made
 * progress (wrote, or waits on a busy connection) and otherwise becomes leaked (`unclosed`).
 * A connection is checked a connection threshold after its owner closed, or after it became idle
 * for a pool checkout with no owner. Everything due is found by popping the head of a sorted
 * queue: the cost of a sweep is what is due, never what is open.
 */
export class Ledger {
  readonly totals: LedgerTotals = {
    responses: 0,
    aborted: 0,
    leakedResponses: 0,
    leakedConnections: 0,
    resolved: 0,
    droppedLeaks: 0,
    connections: { pg: 0, redis: 0 },
  };
  /** Held connections, busy or idle, oldest first (a list, not a Set: see held-list.ts). */
  readonly held = new HeldList<ConnectionRecord>();
  /** Open responses that are already leaked (the others are in the response queue). */
  readonly leakedOpen = new Set<ResponseRecord>();
  /** Leaks in the order found, resolved or not, at most maxReportedLeaks. */
  readonly leaks: Array<ResponseRecord | ConnectionRecord> = [];

  private readonly responseQueue = new DeadlineQueue<ResponseRecord>();
  private readonly connectionQueue = new DeadlineQueue<ConnectionRecord>();
  private readonly observers: LedgerObserver[] = [];
  /** Rebuilt as observers come and go: a transition calls only the observers that hear it. */
  private listeners = listenersOf<LedgerObserver, LedgerEvent>([], LEDGER_EVENTS);
  private readonly clock: () => number;
  private readonly wallOffsetOf: () => number;
  private responseSeq = 0;
  private connectionSeq = 0;
  /** Sweeps at the earliest deadline; null when tests call sweep() themselves. */
  private readonly timer: DeadlineTimer | null;
  private readonly limits: LedgerLimits;
  private readonly onFailure: (what: string, error: unknown) => void;
  private readonly currentResponse: () => ResponseRecord | undefined;
  private readonly madeWhileModuleLoads: ((connection: ConnectionRecord) => boolean) | undefined;
  /** Histories of connections released without leaking, for the next checkouts to reuse. */
  private readonly spareHistories: History[] = [];

  constructor(options: LedgerOptions) {
    this.clock = options.clock ?? steadyNow;
    this.wallOffsetOf = options.clock === undefined ? wallOffset : () => 0;
    this.timer = (options.timer ?? true) ? new DeadlineTimer(this.clock, this.onDeadline) : null;
    this.limits = { responseThresholdMs: options.responseThresholdMs, connectionThresholdMs: options.connectionThresholdMs, maxReportedLeaks: options.maxReportedLeaks };
    this.onFailure = options.onFailure;
    this.currentResponse = options.currentResponse;
    this.madeWhileModuleLoads = options.madeWhileModuleLoads;
  }

  get responseThresholdMs(): number {
    return this.limits.responseThresholdMs;
  }

  get connectionThresholdMs(): number {
    return this.limits.connectionThresholdMs;
  }

  /** New limits, for deadlines scheduled from now on. */
  reconfigure(limits: LedgerLimits): void {
    this.limits.responseThresholdMs = limits.responseThresholdMs;
    this.limits.connectionThresholdMs = limits.connectionThresholdMs;
    this.limits.maxReportedLeaks = limits.maxReportedLeaks;
  }

  now(): number {
    return this.clock();
  }

  /** What to add to a time of this ledger's clock for the wall-clock time it was taken at: a report's dates, metrics' timestamps. */
  wallOffset(): number {
    return this.wallOffsetOf();
  }

  /** Number of open responses, leaked or not. */
  get openResponses(): number {
    return this.responseQueue.size + this.leakedOpen.size;
  }

  /** Every open response; for scrapes and reports, not the hot path. */
  *eachOpenResponse(): IterableIterator<ResponseRecord> {
    yield* this.responseQueue;
    yield* this.leakedOpen;
  }

  /** `observer` hears the transitions it has a method for (read now) until the returned function is called. */
  observe(observer: LedgerObserver): () => void {
    this.observers.push(observer);
    this.listeners = listenersOf(this.observers, LEDGER_EVENTS);
    return () => {
      const i = this.observers.indexOf(observer);
      if (i < 0) return;
      this.observers.splice(i, 1);
      this.listeners = listenersOf(this.observers, LEDGER_EVENTS);
    };
  }

  // ---- responses ---------------------------------------------------------------------------

  openResponse(target: object, probe: ResponseProbe): ResponseRecord {
    const now = this.clock();
    const response = new ResponseRecord(++this.responseSeq, target, probe, now, this.progressOf(probe, target));
    this.responseQueue.schedule(response, now + this.limits.responseThresholdMs);
    this.arm();
    this.notify(this.listeners.responseOpened, 'responseOpened', response);
    return response;
  }

  closeResponse(response: ResponseRecord, outcome: ResponseOutcome): void {
    if (response.closedAt !== 0) return;
    const now = this.clock();
    response.closedAt = now;
    response.outcome = outcome;
    this.totals.responses++;
    if (outcome === 'aborted') this.totals.aborted++;
    this.responseQueue.remove(response);
    if (response.leak !== null) {
      this.leakedOpen.delete(response);
      // An abort after a leak is no fix: the app never ended it. Finishing late is.
      if (outcome === 'finished') this.resolve(response, now);
    }
    const owned = response.connections;
    const stranding = owned !== null && owned.length > 0;
    if (stranding) {
      for (const connection of owned) {
        if (connection.leak === null) this.connectionQueue.schedule(connection, now + this.limits.connectionThresholdMs);
      }
      this.arm();
    }
    // Connections it still holds may leak later: keep what a report needs to name their owner.
    response.letGo(stranding && response.detail === null ? this.describe(response) : null);
    this.notify(this.listeners.responseClosed, 'responseClosed', response);
  }

  /**
   * An operation of the current response starts on a connection it does not own. Given
   * `operation`, the response lists it in `operations` until it ends.
   */
  beginOperation(response: ResponseRecord, operation?: PendingOperation): void {
    response.pendingOps++;
    if (operation === undefined) return;
    (response.operations ??= new OperationList()).add(operation);
    const connection = operation.connection;
    if (connection.owner !== null && connection.owner !== response && !connection.pooled) this.share(connection);
  }

  /**
   * Another request used a dedicated connection (a bare pg client, a Redis client) that a request
   * made: it is shared (a lazy singleton made by the first request that needed it), not that
   * request's. It is owned by nobody from then on, like a client made at start-up, and a leak
   * reported for it is withdrawn (listed as resolved). A pool checkout is a lease and stays its
   * requester's.
   */
  private share(connection: ConnectionRecord): void {
    this.disown(connection);
    if (connection.leak !== null) this.resolve(connection, this.clock());
  }

  /** `connection` is owned by nobody from now on, and no check of its owner is pending for it. */
  private disown(connection: ConnectionRecord): void {
    if (connection.owner !== null) forget(connection.owner, connection);
    connection.owner = null;
    this.connectionQueue.remove(connection);
  }

  endOperation(response: ResponseRecord, operation?: PendingOperation): void {
    if (response.pendingOps > 0) response.pendingOps--;
    if (operation !== undefined) response.operations?.delete(operation);
  }

  // ---- connections -------------------------------------------------------------------------

  /**
   * Records a connection acquired now. Its owner is `owner` where the caller knows it (the response
   * that asked for a checkout, or made a client, in whatever context it is delivered), else the
   * response of the current async context.
   */
  acquireConnection(init: ConnectionInit, owner: ResponseRecord | null = this.currentResponse() ?? null): ConnectionRecord {
    const now = this.clock();
    const connection = new ConnectionRecord(++this.connectionSeq, init, owner, now);
    // Only what the leak rules can report keeps a history: a client shared by the app never leaks,
    // and a self-releasing checkout is never idle in the app's hands.
    if ((owner !== null || init.pooled) && !connection.selfReleasing) this.startHistory(connection, now);
    this.held.add(connection);
    // By name: a keyed increment seeing both kinds would go megamorphic, on every acquisition.
    if (connection.kind === 'pg') this.totals.connections.pg++;
    else this.totals.connections.redis++;
    if (owner !== null) {
      if (owner.connections === null) owner.connections = [connection];
      else owner.connections.push(connection);
      if (owner.closedAt !== 0) this.scheduleConnection(connection, now);
      else if (owner.leak !== null && connection.busy === 0) this.connectionLeaked(connection, 'held-by-leaked-response', now);
    } else if (init.pooled) {
      this.scheduleConnection(connection, now);
    }
    this.notify(this.listeners.connectionAcquired, 'connectionAcquired', connection);
    return connection;
  }

  /** The client sent something and waits for the server. A self-releasing checkout stays busy until released. */
  connectionBusy(connection: ConnectionRecord): void {
    if (connection.selfReleasing) return;
    if (connection.busy++ === 0) connection.history?.enter(this.clock(), 'busy');
  }

  /** The server answered; `state` says what kind of idle (transaction status, subscriber). */
  connectionIdle(connection: ConnectionRecord, state?: IdleState): void {
    if (connection.selfReleasing) return;
    if (connection.busy > 0) connection.busy--;
    if (state !== undefined) connection.idleState = state;
    if (connection.busy === 0) {
      connection.idleSince = this.clock();
      connection.history?.enter(connection.idleSince, connection.idleState);
      const owner = connection.owner;
      if (owner !== null && owner.leak !== null && connection.leak === null && connection.releasedAt === 0) {
        this.connectionLeaked(connection, 'held-by-leaked-response', connection.idleSince);
      }
    }
  }

  setIdleState(connection: ConnectionRecord, state: IdleState): void {
    if (connection.idleState === state || connection.selfReleasing) return;
    connection.idleState = state;
    if (connection.busy === 0) connection.history?.enter(this.clock(), state);
  }

  /**
   * The connection's socket is gone while it is still held: its pool counts it checked out until
   * it is released or dropped, so it stays held (and may leak) in state `closed`, waiting on nothing.
   */
  connectionClosed(connection: ConnectionRecord, closure: Omit<ConnectionClosure, 'at'>): void {
    if (connection.releasedAt !== 0 || connection.closed !== null) return;
    const now = this.clock();
    connection.closed = { ...closure, at: now };
    connection.busy = 0;
    connection.idleSince = now;
    connection.history?.enter(now, 'closed');
    const owner = connection.owner;
    if (owner !== null && owner.leak !== null && connection.leak === null) this.connectionLeaked(connection, 'held-by-leaked-response', now);
    this.notify(this.listeners.connectionClosed, 'connectionClosed', connection);
  }

  /** Released to its pool, ended, quit or lost; it stops being held. Calling twice is harmless. */
  releaseConnection(connection: ConnectionRecord): void {
    if (connection.releasedAt !== 0) return;
    const now = this.clock();
    connection.releasedAt = now;
    connection.busy = 0;
    this.held.delete(connection);
    this.connectionQueue.remove(connection);
    if (connection.owner !== null) forget(connection.owner, connection);
    if (connection.leak !== null) this.resolve(connection, now);
    else this.recycleHistory(connection);
    connection.target = null;
    this.notify(this.listeners.connectionReleased, 'connectionReleased', connection);
    if (connection.leak === null) connection.letGo(); // a leak's record stays whole for the report
  }

  // ---- deadlines ---------------------------------------------------------------------------

  /** Applies the leak rules to everything due at `now`. Called by the timer; tests call it directly. */
  sweep(now: number = this.clock()): void {
    let response: ResponseRecord | null;
    while ((response = this.responseQueue.popDue(now)) !== null) this.checkResponse(response, now);
    let connection: ConnectionRecord | null;
    while ((connection = this.connectionQueue.popDue(now)) !== null) this.checkConnection(connection, now);
  }

  /**
   * The end of a process or of a test: thresholds no longer apply. Every open response that
   * `includes` (all by default) becomes leaked (`open-at-exit`), and every connection its requests
   * hold, busy or idle, becomes leaked too.
   */
  finalize(includes: (response: ResponseRecord) => boolean = () => true): void {
    const now = this.clock();
    for (const response of [...this.responseQueue]) {
      if (includes(response)) {
        this.responseQueue.remove(response);
        this.responseLeaked(response, 'open-at-exit', now);
      }
    }
    for (const connection of [...this.held]) {
      const owner = connection.owner;
      if (owner === null || connection.leak !== null || !includes(owner)) continue;
      this.connectionLeaked(connection, owner.closedAt !== 0 ? 'held-after-response-closed' : 'held-by-leaked-response', now);
    }
  }

  private checkResponse(response: ResponseRecord, now: number): void {
    const mark = this.progressOf(response.probe, response.target);
    if (mark !== response.progressMark || response.pendingOps > 0 || this.ownsBusyConnection(response) || this.waitsOnPool(response)) {
      (response.history ??= new History()).add(now, mark !== response.progressMark ? 'wrote' : 'waited', Math.max(0, mark - response.progressMark));
      response.progressMark = mark;
      this.responseQueue.schedule(response, now + this.limits.responseThresholdMs);
      return;
    }
    this.responseLeaked(response, 'unclosed', now);
  }

  private checkConnection(connection: ConnectionRecord, now: number): void {
    if (connection.releasedAt !== 0 || connection.leak !== null) return;
    if (connection.busy > 0) {
      this.connectionQueue.schedule(connection, now + this.limits.connectionThresholdMs);
      return;
    }
    const owner = connection.owner;
    if (owner !== null) {
      if (owner.closedAt === 0) return; // the owner's close schedules the next check
      this.connectionLeaked(connection, 'held-after-response-closed', now);
      return;
    }
    const idleFor = now - connection.idleSince;
    // A start-up LISTEN or subscriber checkout waits for the server by design: no leak by itself.
    if (connection.idleState === 'subscriber') this.connectionQueue.schedule(connection, now + this.limits.connectionThresholdMs);
    else if (idleFor >= this.limits.connectionThresholdMs) this.connectionLeaked(connection, 'idle-past-threshold', now);
    else this.connectionQueue.schedule(connection, connection.idleSince + this.limits.connectionThresholdMs);
  }

  // ---- histories (events for the report's timelines; see history.ts) -------------------------

  private startHistory(connection: ConnectionRecord, now: number): void {
    const history = this.spareHistories.pop() ?? new History();
    history.enter(now, connection.state);
    connection.history = history;
  }

  /** A connection released without leaking needs no history: the next checkout reuses it. */
  private recycleHistory(connection: ConnectionRecord): void {
    const history = connection.history;
    if (history === null) return;
    connection.history = null;
    history.reset();
    if (this.spareHistories.length < MAX_SPARE_HISTORIES) this.spareHistories.push(history);
  }

  private scheduleConnection(connection: ConnectionRecord, now: number): void {
    this.connectionQueue.schedule(connection, now + this.limits.connectionThresholdMs);
    this.arm();
  }

  private ownsBusyConnection(response: ResponseRecord): boolean {
    if (response.connections === null) return false;
    for (const connection of response.connections) if (connection.busy > 0) return true;
    return false;
  }

  /**
   * The response waits for a pool checkout (queued, or its new connection connecting), holding no
   * idle connection meanwhile. One that holds a connection idle while it waits is stalled all the
   * same: it may be what keeps the pool dry (a second checkout from a pool of one, asked while the
   * first is held), and its idle connection is reported with it.
   */
  private waitsOnPool(response: ResponseRecord): boolean {
    if (response.pendingCheckouts === 0) return false;
    if (response.connections === null) return true;
    for (const connection of response.connections) if (connection.busy === 0) return false;
    return true;
  }

  private responseLeaked(response: ResponseRecord, reason: ResponseLeakReason, now: number): void {
    response.leak = { reason, detectedAt: now, resolvedAt: 0 };
    response.detail = this.describe(response);
    this.leakedOpen.add(response);
    this.totals.leakedResponses++;
    this.keep(response);
    this.notify(this.listeners.responseLeaked, 'responseLeaked', response);
    if (response.connections !== null) {
      for (const connection of response.connections) {
        if (connection.leak === null && connection.busy === 0) this.connectionLeaked(connection, 'held-by-leaked-response', now);
      }
    }
  }

  private connectionLeaked(connection: ConnectionRecord, reason: ConnectionLeakReason, now: number): void {
    if (reason !== 'idle-past-threshold' && this.ownedByModule(connection, now)) return;
    connection.leak = { reason, detectedAt: now, resolvedAt: 0 };
    this.connectionQueue.remove(connection);
    this.totals.leakedConnections++;
    this.keep(connection);
    this.notify(this.listeners.connectionLeaked, 'connectionLeaked', connection);
  }

  /**
   * A connection whose owner was taken without the module check (ownerUnverified), about to be
   * blamed on that owner: if a module's top-level code acquired it (a LISTEN client or a warm-up
   * made while a route's module loads during a request), it is the module's, owned by nobody, and
   * a pool checkout goes on under the rule for checkouts with no owner.
   */
  private ownedByModule(connection: ConnectionRecord, now: number): boolean {
    if (!connection.ownerUnverified) return false;
    connection.ownerUnverified = false;
    let byModule = false;
    try {
      byModule = this.madeWhileModuleLoads?.(connection) ?? false;
    } catch (error) {
      this.onFailure('reading an acquisition stack', error);
    }
    if (!byModule) return false;
    this.disown(connection);
    if (connection.pooled && connection.releasedAt === 0) this.scheduleConnection(connection, now);
    return true;
  }

  private resolve(item: ResponseRecord | ConnectionRecord, now: number): void {
    if (item.leak === null || item.leak.resolvedAt !== 0) return;
    item.leak.resolvedAt = now;
    if (item instanceof ResponseRecord) this.totals.leakedResponses--;
    else this.totals.leakedConnections--;
    this.totals.resolved++;
    this.notify(this.listeners.leakResolved, 'leakResolved', item);
  }

  private keep(item: ResponseRecord | ConnectionRecord): void {
    this.leaks.push(item);
    if (this.leaks.length > this.limits.maxReportedLeaks) {
      this.leaks.shift();
      this.totals.droppedLeaks++;
    }
  }

  private describe(response: ResponseRecord): ResponseDetail {
    try {
      return response.describe();
    } catch (error) {
      this.onFailure(`describing response ${response.id}`, error);
      return { method: 'UNKNOWN', path: '', route: response.routeTemplate, endOverrides: [] };
    }
  }

  private progressOf(probe: ResponseProbe, target: object | null): number {
    if (target === null) return 0;
    try {
      return probe.progress(target);
    } catch (error) {
      this.onFailure('reading response progress', error);
      return 0;
    }
  }

  /** Calls `event`'s listeners (read by name by the caller, see src/core/listeners.ts) with `item`. */
  private notify(listeners: ReadonlyArray<Listener<LedgerObserver>>, event: LedgerEvent, item: ResponseRecord | ConnectionRecord): void {
    if (listeners.length > 0) notifyListeners(listeners, item, undefined, this.onFailure, 'ledger observer', event);
  }

  private arm(): void {
    this.timer?.arm(Math.min(this.responseQueue.nextDueAt, this.connectionQueue.nextDueAt));
  }

  private readonly onDeadline = (now: number): void => {
    try {
      this.sweep(now);
    } catch (error) {
      this.onFailure('deadline sweep', error);
    }
    this.arm();
  };

  /** Stops the timer; records stay. */
  stop(): void {
    this.timer?.stop();
  }
}
