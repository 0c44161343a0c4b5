import { logFailure } from '../core/guard.js';
import { PG_TRACKER } from '../core/marks.js';
import type { Ledger } from '../core/ledger.js';
import type { ConnectionClosure, ConnectionRecord, IdleState, ResponseRecord, StackCapture } from '../core/records.js';
import { pgConnectionProbe } from './confirm.js';
import type { Fn } from '../core/patch.js';
import type { PgClient, PgConnection } from './internal-types.js';
import { pgState } from './state.js';

/**
 * Whose turn it is on one pg connection, read from the wire protocol.
 *
 * The client is *busy* from the moment it sends something the server must answer until the answer
 * is complete, and *idle* otherwise. Counted per message: a simple Query or a Sync awaits
 * ReadyForQuery, a Describe awaits RowDescription/NoData, an Execute awaits CommandComplete,
 * PortalSuspended or EmptyQueryResponse; an ErrorResponse cancels everything up to the next Sync.
 * So a cursor's read is busy until its rows arrive, and a paused cursor (Execute answered with
 * PortalSuspended, no Sync sent) is idle although pg_stat_activity says `active`. Each
 * ReadyForQuery carries the transaction status: `I`, `T` (in a transaction) or `E` (in a failed one).
 *
 * The counting is done by wrapping four send methods of the client's own Connection object and by
 * listeners put *before* pg's own, so the state is right before pg runs the app's callbacks. A
 * pool's client is counted from its first checkout that is not self-releasing (see follow()); the
 * end of its socket is heard from the start.
 *
 * When the socket goes away, a bare client's record is released (nothing is held any more), but a
 * pool's checkout stays held in state `closed` until its pool lets go of it (`release()`, the pool
 * dropping it): the pool counts it checked out until then. How it went is kept: terminated by the
 * server (an ErrorResponse nobody asked for, or a FATAL one, before the end), a socket error, or
 * the client's own `end()`.
 */


type MarkedClient = PgClient & { [PG_TRACKER]?: ClientTracker };

export function idleStateOf(txStatus: string | null, listening = false): IdleState {
  return txStatus === 'T' ? 'idle-in-transaction' : txStatus === 'E' ? 'idle-in-transaction-aborted' : listening ? 'subscriber' : 'idle';
}

// Only the statement's first word is looked at; the text itself is never kept.
const LISTEN = /^\s*LISTEN\s/i;
const UNLISTEN = /^\s*UNLISTEN\s/i;

/**
 * Whether the first character of `text` that is not an ASCII blank may begin a word starting with
 * `letter` (a lower-case ASCII letter, either case matching): nearly every statement (SELECT,
 * INSERT …) is told apart there, by one comparison, before a regular expression runs on every
 * query. A character outside ASCII is left to the expression (`\s` takes in other blanks).
 */
function mayStartWith(text: string, letter: number): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) continue;
    return (c | 0x20) === letter || c > 0x7f;
  }
  return false;
}

/** The statement is a LISTEN (its first word; the answer of `/^\s*LISTEN\s/i`). */
export function isListen(text: string): boolean {
  return mayStartWith(text, 0x6c) && LISTEN.test(text);
}

/** The statement is an UNLISTEN (its first word; the answer of `/^\s*UNLISTEN\s/i`). */
export function isUnlisten(text: string): boolean {
  return mayStartWith(text, 0x75) && UNLISTEN.test(text);
}

/**
 * A LISTEN sent on a connected client whose wire is not followed yet (through `pool.query()`, or a
 * pool's 'connect' handler before the client's first checkout) starts following it before the
 * statement goes out, so that a later checkout of that client reads it as a `subscriber`. Only the
 * statement's first word is read; `tracker` is the client's, if it has one.
 */
export function followOnListen(client: PgClient, tracker: ClientTracker | undefined, config: unknown): void {
  if (tracker?.following === true) return; // its wire shows the LISTEN
  const text = typeof config === 'string' ? config : config !== null && typeof config === 'object' ? (config as { text?: unknown }).text : undefined;
  if (typeof text !== 'string' || !isListen(text)) return;
  if (tracker !== undefined) tracker.follow();
  // Not connected yet: a bare client is followed from its connect(), a pool's from its first checkout.
  else if (client._connected === true) trackClient(client, false, true);
}

export function trackerOf(client: object): ClientTracker | undefined {
  return (client as MarkedClient)[PG_TRACKER];
}

/**
 * The tracker of `client` (made once; later calls return the same one), following the wire unless
 * `follow` is false (see ClientTracker#follow). `connecting` says the client is about to send its
 * startup message, which is answered by a ReadyForQuery.
 */
export function trackClient(client: PgClient, connecting: boolean, follow = true): ClientTracker {
  const tracked = client as MarkedClient;
  const existing = tracked[PG_TRACKER];
  if (existing !== undefined) {
    if (follow) existing.follow();
    return existing;
  }
  const tracker = new ClientTracker(client, connecting);
  Object.defineProperty(tracked, PG_TRACKER, { value: tracker, configurable: true, enumerable: false, writable: true });
  pgState().trackers.add(tracker);
  tracker.attach();
  if (follow) tracker.follow();
  return tracker;
}

export class ClientTracker {
  /** Simple Queries and Syncs sent and not yet answered by ReadyForQuery (and the startup). */
  pendingSync = 0;
  pendingDescribe = 0;
  pendingExecute = 0;
  busy = false;
  /** Transaction status of the last ReadyForQuery: 'I', 'T', 'E', or null before the first. */
  txStatus: string | null = null;
  /** The client ran LISTEN (and no UNLISTEN since): it waits for notifications, like a subscriber. */
  listening = false;
  /** The checkout (pool) or the client itself (bare) as the ledger knows it; null when not held. */
  record: ConnectionRecord | null = null;
  /** The socket is gone; the tracker stays on the client only until its pool lets go of the checkout. */
  gone = false;
  /** What the end of the socket will be put down to (see closure()). */
  endCalled = false;
  /** The wire is followed (see follow()). */
  get following(): boolean {
    return this.followingWire;
  }
  private followingWire = false;
  private serverError: string | null = null;
  private socketError: { code: string | null } | null = null;
  private ledger: Ledger | null = null;
  private readonly undos: Array<() => void> = [];
  /** Made as the client connects, and followed from then on. */
  private readonly connecting: boolean;

  constructor(
    readonly client: PgClient,
    connecting: boolean,
  ) {
    this.connecting = connecting;
    if (connecting) {
      this.pendingSync = 1;
      this.busy = true;
    } else {
      this.readPgView();
    }
  }

  /** Takes pg's own view of the client: its transaction status and whether something is in flight. */
  private readPgView(): void {
    const client = this.client;
    this.txStatus = client._txStatus ?? null;
    this.pendingSync = client.readyForQuery === false && client._activeQuery ? 1 : 0;
    this.pendingDescribe = this.pendingExecute = 0;
    this.busy = this.pendingSync > 0;
  }

  /**
   * Follows the wire from now on, once. A pool's client is followed from its first checkout that is
   * not self-releasing: while the app only calls `pool.query()` on it, nothing reads its state (the
   * ledger keeps such a checkout busy until released), and following each of its messages is the
   * larger part of what pg costs leakwatch on a pool.query endpoint. What was sent before is read
   * from pg's own fields; a LISTEN starts following at once (see {@link followOnListen}).
   */
  follow(): void {
    if (this.followingWire || this.gone) return;
    this.followingWire = true;
    // Made as it connects: its startup, counted from the start, is still to be answered.
    if (!this.connecting) this.readPgView();
    this.attachWire();
  }

  /**
   * What every tracked client is heard for, followed or not: the end of its socket and how it came
   * (events a connection emits once, or on an error), so that a checkout whose socket went away is
   * `closed`, and the tracker is let go with its client.
   */
  attach(): void {
    const connection = this.client.connection;
    if (connection === undefined || typeof connection.prependListener !== 'function') return; // pg-native: no protocol
    this.listen(connection, 'errorMessage', (message) => {
      // Unasked for (nothing pending) or FATAL: the server is ending the session; only its code is
      // kept. Before the wire is followed, only FATAL tells.
      const { severity, code } = (message ?? {}) as { severity?: unknown; code?: unknown };
      if (severity === 'FATAL' || severity === 'PANIC' || (this.followingWire && !this.busy)) this.serverError = typeof code === 'string' ? code : 'unknown';
      if (!this.followingWire) return;
      // The server skips everything up to the next Sync; only that Sync is still answered.
      this.pendingDescribe = this.pendingExecute = 0;
      this.update();
    });
    this.listen(connection, 'error', (error) => {
      const code = (error as { code?: unknown } | undefined)?.code;
      this.socketError ??= { code: typeof code === 'string' ? code : null };
    });
    this.listen(connection, 'end', () => this.ended());
  }

  /** Whose turn it is, message by message: four send methods wrapped, and what answers them heard. */
  private attachWire(): void {
    const connection = this.client.connection;
    if (connection === undefined || typeof connection.prependListener !== 'function') return;
    this.wrapSend(connection, 'query', (text) => {
      this.pendingSync++;
      if (typeof text === 'string') {
        if (isListen(text)) this.listening = true;
        else if (this.listening && isUnlisten(text)) this.listening = false;
      }
    });
    this.wrapSend(connection, 'sync', () => this.pendingSync++);
    this.wrapSend(connection, 'describe', () => this.pendingDescribe++);
    this.wrapSend(connection, 'execute', () => this.pendingExecute++);
    this.listen(connection, 'readyForQuery', (message) => {
      const status = (message as { status?: unknown } | undefined)?.status;
      if (typeof status === 'string') this.txStatus = status;
      if (this.pendingSync > 0) this.pendingSync--;
      if (this.pendingSync === 0) this.pendingDescribe = this.pendingExecute = 0;
      this.update();
    });
    const described = () => {
      if (this.pendingDescribe > 0) this.pendingDescribe--;
      this.update();
    };
    const executed = () => {
      if (this.pendingExecute > 0) this.pendingExecute--;
      this.update();
    };
    this.listen(connection, 'rowDescription', described);
    this.listen(connection, 'noData', described);
    this.listen(connection, 'commandComplete', executed);
    this.listen(connection, 'portalSuspended', executed);
    this.listen(connection, 'emptyQuery', executed);
  }

  /** Stops following the client: its Connection gets its own methods back. Records stay. */
  detach(): void {
    this.unfollow();
    this.forget();
  }

  private unfollow(): void {
    for (let i = this.undos.length - 1; i >= 0; i--) this.undos[i]();
    this.undos.length = 0;
  }

  private forget(): void {
    pgState().trackers.delete(this);
    const tracked = this.client as MarkedClient;
    if (tracked[PG_TRACKER] === this) delete tracked[PG_TRACKER];
  }

  /** A pool received this client it made: from now on it is held only while checked out. */
  adoptIntoPool(): void {
    if (this.record !== null && !this.record.pooled) this.release();
  }

  /**
   * Records a checkout or a bare client as held by the owner of the current async context.
   * `owner`: see Ledger#acquireConnection (undefined: the current context's response).
   * `selfReleasing`: see ConnectionInit.selfReleasing; the ledger keeps the record busy until
   * released, and a client not followed yet is not followed for it (see follow()).
   */
  acquire(ledger: Ledger, pool: string, pooled: boolean, stack: StackCapture | null, owner?: ResponseRecord | null, selfReleasing = false): ConnectionRecord {
    if (this.record !== null) this.release();
    if (!selfReleasing) this.follow();
    this.ledger = ledger;
    const record = ledger.acquireConnection({
      kind: 'pg',
      pool,
      pooled,
      target: this.client,
      probe: pgConnectionProbe,
      stack,
      busy: this.busy,
      selfReleasing,
      // The owner is taken without reading the stack for a module's code (checkout.ts, client.ts): the ledger does when it matters.
      ownerUnverified: true,
    }, owner);
    this.record = record;
    if (this.gone) ledger.connectionClosed(record, this.closure());
    else if (!this.busy) ledger.setIdleState(record, idleStateOf(this.txStatus, this.listening));
    return record;
  }

  release(): void {
    const record = this.record;
    if (record !== null) {
      this.record = null;
      this.ledger?.releaseConnection(record);
    }
    if (this.gone) this.forget();
  }

  private closure(): Omit<ConnectionClosure, 'at'> {
    if (this.endCalled) return { how: 'ended-by-client', code: null };
    if (this.serverError !== null) return { how: 'terminated-by-server', code: this.serverError };
    if (this.socketError !== null) return { how: 'socket-error', code: this.socketError.code };
    return { how: 'socket-closed', code: null };
  }

  private ended(): void {
    this.pendingSync = this.pendingDescribe = this.pendingExecute = 0;
    this.busy = false;
    this.unfollow();
    const record = this.record;
    if (record !== null && record.pooled && this.ledger !== null) {
      // Still checked out of its pool: held, closed, until the pool lets go of it.
      this.gone = true;
      this.ledger.connectionClosed(record, this.closure());
      return;
    }
    this.release();
    this.forget();
  }

  private update(): void {
    const busy = this.pendingSync > 0 || this.pendingDescribe > 0 || this.pendingExecute > 0;
    const record = this.record;
    const ledger = this.ledger;
    if (busy === this.busy) {
      if (!busy && record !== null && ledger !== null) {
        const state = idleStateOf(this.txStatus, this.listening);
        if (record.idleState !== state) ledger.setIdleState(record, state);
      }
      return;
    }
    this.busy = busy;
    if (record === null || ledger === null) return;
    if (busy) ledger.connectionBusy(record);
    else ledger.connectionIdle(record, idleStateOf(this.txStatus, this.listening));
  }

  private wrapSend(connection: PgConnection, name: 'query' | 'sync' | 'describe' | 'execute', count: (first?: unknown) => void): void {
    const target = connection as unknown as Record<string, unknown>;
    const original = target[name];
    if (typeof original !== 'function') return;
    const own = Object.getOwnPropertyDescriptor(connection, name);
    const tracker = this;
    // pg's send methods take at most two arguments; naming them spares an array per message.
    const wrapper = function (this: unknown, a?: unknown, b?: unknown) {
      try {
        count(a);
        if (!tracker.busy) tracker.update();
      } catch (error) {
        logFailure(`pg connection.${name}`, error);
      }
      return arguments.length <= 2 ? (original as Fn).call(this, a, b) : (original as Fn).apply(this, arguments as unknown as unknown[]);
    };
    Object.defineProperty(connection, name, { value: wrapper, writable: true, configurable: true, enumerable: false });
    this.undos.push(() => {
      if (target[name] !== wrapper) return;
      if (own !== undefined) Object.defineProperty(connection, name, own);
      else delete target[name];
    });
  }

  private listen(connection: PgConnection, event: string, handle: (message?: unknown) => void): void {
    const listener = (message?: unknown) => {
      try {
        handle(message);
      } catch (error) {
        logFailure(`pg ${event}`, error);
      }
    };
    connection.prependListener(event, listener);
    this.undos.push(() => connection.removeListener(event, listener));
  }
}
