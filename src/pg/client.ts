import { logFailure } from '../core/guard.js';
import { OPERATION_LINKS, type PendingOperation, type ConnectionRecord, type ResponseRecord } from '../core/records.js';
import { applyAll, install, ownerOf, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import { currentResponse, getRuntime, isPoolWork } from '../core/runtime.js';
import { captureStack } from '../core/stack.js';
import { type PgClient } from './internal-types.js';
import { clientEndpointName } from './naming.js';
import { followOnListen, trackClient, trackerOf } from './protocol.js';
import { activate, pgState } from './state.js';

/**
 * pg `Client`: a bare client, one not made by a pool, is followed on the wire from `connect()`
 * (see protocol.ts), and is itself a held connection from `connect()` until `end()` or
 * the loss of its socket, owned by the response in whose context `connect()` was called. A client
 * that a pool made (inside pg-pool's `newClient`, or a pool library's `create`: see src/pools) is
 * the pool's: its checkouts are the records. Queries a response makes on a client it does not
 * hold are operations of that response.
 */

function startClient(client: PgClient, below: Function): void {
  // Already followed, or already connected (pg answers that with an error of its own).
  if (trackerOf(client) !== undefined || client._connecting === true || client._connected === true) return;
  const state = pgState();
  // A pool's client: its checkouts are the records, and it is followed from its first checkout
  // that is not self-releasing (ClientTracker#follow).
  if (state.poolClientDepth > 0 || isPoolWork()) return;
  const tracker = trackClient(client, true);
  const runtime = getRuntime();
  if (runtime === undefined) return;
  const stack = captureStack(state.stackFrames, below);
  // A client a module's top-level code connects is that module's, shared, even when the module loads
  // during a request: the ledger asks only when a leak rule would blame the request (ownerUnverified).
  tracker.acquire(runtime.ledger, clientEndpointName(client.connectionParameters), false, stack);
}

function wrapConnect(layer: Layer): Fn {
  const connect = function (this: PgClient, ...args: unknown[]) {
    if (layer.active) {
      try {
        startClient(this, connect);
      } catch (error) {
        logFailure('pg client.connect', error);
      }
    }
    return layer.original.apply(this, args);
  };
  return connect as unknown as Fn;
}

type Submittable = {
  handleReadyForQuery?: (...args: unknown[]) => unknown;
  handleError?: (...args: unknown[]) => unknown;
  read?: unknown;
};

type QueueingClient = PgClient & {
  _queryQueue?: Submittable[];
  _sentQueryQueue?: Submittable[];
  _activeQuery?: Submittable | null;
};

/** A query object of pg's Submittable kind (a cursor, a query stream, a `new Query()`), as `client.query()` tells them apart. */
export function isSubmittable(config: unknown): config is Submittable {
  return config !== null && typeof config === 'object' && typeof (config as { submit?: unknown }).submit === 'function';
}

/** The submittable a `client.query()` call just queued or sent (pg makes it inside for text queries). */
function submittedBy(client: QueueingClient, config: unknown, queuedBefore: number, activeBefore: unknown): Submittable | null {
  if (isSubmittable(config)) return config;
  const queue = client._queryQueue;
  if (queue !== undefined && queue.length > queuedBefore) return queue[queue.length - 1];
  const sent = client._sentQueryQueue;
  if (sent !== undefined && sent.length > 0 && (client as { pipeline?: boolean }).pipeline === true) return sent[sent.length - 1];
  const active = client._activeQuery;
  return active !== activeBefore && active !== undefined ? active : null;
}

/**
 * A response that queries a client it does not hold (a client shared by all requests) waits on
 * that query: the ledger counts it as an operation of the response until pg hands the query its
 * end or its error, so a response waiting on a slow query there is not stalled. Cursors and
 * streams are left out: a paused one is not waiting on the server.
 */
function wrapQuery(layer: Layer): Fn {
  // `arguments` passed through as V8 forwards it, not a rest array: every pool.query() comes here.
  return function query(this: QueueingClient, config?: unknown) {
    if (!layer.active) return layer.original.apply(this, arguments as unknown as unknown[]);
    let response;
    try {
      const tracker = trackerOf(this);
      followOnListen(this, tracker, config);
      // A self-releasing checkout's query is its pool library's own (pool.query()): no context read.
      const record = tracker?.record;
      response = record === undefined || record === null || record.selfReleasing ? undefined : currentResponse();
      if (response !== undefined && (response.closedAt !== 0 || record!.owner === response)) response = undefined;
    } catch (error) {
      logFailure('pg client.query', error);
      response = undefined;
    }
    if (response === undefined) return layer.original.apply(this, arguments as unknown as unknown[]);
    const queuedBefore = this._queryQueue?.length ?? 0;
    const activeBefore = this._activeQuery;
    const result = layer.original.apply(this, arguments as unknown as unknown[]);
    try {
      const submitted = submittedBy(this, config, queuedBefore, activeBefore);
      if (submitted !== null && submitted.read === undefined) followOperation(submitted, response, trackerOf(this)!.record!);
    } catch (error) {
      logFailure('pg client.query', error);
    }
    return result;
  };
}

/** A query a response runs on a client it does not hold. */
class QueryOperation implements PendingOperation {
  [OPERATION_LINKS.list]: unknown = null;
  [OPERATION_LINKS.prev]: unknown = null;
  [OPERATION_LINKS.next]: unknown = null;
  readonly command = 'query';
  constructor(
    readonly connection: ConnectionRecord,
    readonly startedAt: number,
  ) {
  }
}

function followOperation(submitted: Submittable, response: ResponseRecord, connection: ConnectionRecord): void {
  const { handleReadyForQuery, handleError } = submitted;
  if (typeof handleReadyForQuery !== 'function' || typeof handleError !== 'function') return;
  const ledger = getRuntime()?.ledger;
  if (ledger === undefined) return;
  const operation = new QueryOperation(connection, ledger.now());
  ledger.beginOperation(response, operation);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    try {
      ledger.endOperation(response, operation);
    } catch (error) {
      logFailure('pg query end', error);
    }
  };
  // Own properties on this one query object, which lives only as long as the query.
  submitted.handleReadyForQuery = function (this: unknown, ...args: unknown[]) {
    end();
    return handleReadyForQuery.apply(this, args);
  };
  submitted.handleError = function (this: unknown, ...args: unknown[]) {
    end();
    return handleError.apply(this, args);
  };
}

function wrapEnd(layer: Layer): Fn {
  return function end(this: PgClient, ...args: unknown[]) {
    if (layer.active) {
      try {
        const tracker = trackerOf(this);
        // A checkout ended by the app is still counted by its pool until released: it becomes `closed`.
        if (tracker?.record?.pooled === true) tracker.endCalled = true;
        else tracker?.release();
      } catch (error) {
        logFailure('pg client.end', error);
      }
    }
    return layer.original.apply(this, args);
  };
}

/**
 * Instruments every client of a pg `Client` class by patching its prototype. Shared by every
 * caller; undone when the last one lets go.
 */
export function instrumentClientClass(Client: unknown): Undo {
  const proto = (Client as { prototype?: object } | null)?.prototype;
  if (proto === undefined || proto === null || typeof (proto as PgClient).connect !== 'function') {
    throw new TypeError('instrumentClientClass(Client) needs the Client class of pg.');
  }
  const patch = (name: string, wrap: (layer: Layer) => Fn): Undo | null => {
    const owner = ownerOf(proto, name);
    return owner === null ? null : wrapMethod(owner, name, wrap);
  };
  return install(ownerOf(proto, 'connect') ?? proto, 'pg Client', () =>
    applyAll([activate, () => patch('connect', wrapConnect), () => patch('query', wrapQuery), () => patch('end', wrapEnd)]),
  );
}
