import type { DeadlineItem } from './deadline-queue.js';
import type { HeldItem } from './held-list.js';
import type { History } from './history.js';

export type ResponseOutcome = 'finished' | 'aborted';
export type ResponseLeakReason = 'unclosed' | 'open-at-exit';
export type ConnectionLeakReason = 'held-by-leaked-response' | 'held-after-response-closed' | 'idle-past-threshold';
export type LeakReason = ResponseLeakReason | ConnectionLeakReason;
export type ConnectionKind = 'pg' | 'redis';
/** What a connection waits for when it is not busy: the app's next move, in one of these modes. */
export type IdleState = 'idle' | 'idle-in-transaction' | 'idle-in-transaction-aborted' | 'subscriber';
/** `closed`: the socket is gone while the connection is still held (its pool counts it checked out). */
export type ConnectionState = 'busy' | IdleState | 'closed';

/** How a held connection's socket went away. */
export type ClosedHow = 'terminated-by-server' | 'socket-error' | 'socket-closed' | 'ended-by-client';

export interface ConnectionClosure {
  how: ClosedHow;
  /** The server's SQLSTATE (`57P01`) or the socket's error code (`ECONNRESET`); null when none was given. */
  code: string | null;
  at: number;
}

/** One `res.end` replacement made during a request. */
export interface EndOverride {
  /** `file:line:column` of the code that assigned `res.end`. */
  at: string;
  /** The replacement was invoked. */
  called: boolean;
  /** The replacement invoked the `end` it replaced. */
  calledThrough: boolean;
}

/**
 * How the ledger reads a response it does not own. One shared probe per kind of response (node:http,
 * fetch-style), so nothing is allocated per request for it.
 */
export interface ResponseProbe {
  /** A number that changes whenever the response writes; compared between deadline checks. */
  progress(target: object): number;
  method(target: object): string;
  /** URL path without the query string. */
  path(target: object): string;
  /** Route template if a framework made one known, else null. */
  route(target: object): string | null;
  endOverrides(target: object): EndOverride[];
}

/** What the database or cache server says about a connection. */
export interface ServerState {
  pid?: number;
  clientId?: number;
  state: string | null;
  stateAgeMs: number | null;
  /** Extra fields a server reports (Redis CLIENT LIST flags, cmd …), never argument values. */
  [key: string]: unknown;
}

/** How the ledger asks a connection's server about it. Shared per kind, like ResponseProbe. */
export interface ConnectionProbe {
  /** Identity known without asking the server (pg backend pid, Redis client id). */
  serverIdentity?(target: object): { pid?: number; clientId?: number } | null;
  /** Asks the server; resolves null when it cannot. Must never reject. */
  confirm?(target: object): Promise<ServerState | null>;
}

/**
 * A command a response has in flight on a connection it does not own (a shared Redis client). A
 * leaked response lists these to show what it still waits for; command names only, never arguments.
 */
export interface PendingOperation {
  readonly connection: ConnectionRecord;
  /** The command name as the driver has it (`get`, `blpop`); never its arguments. */
  readonly command: string;
  readonly startedAt: number;
}

const kList = Symbol('leakwatch.operationList');
const kPrev = Symbol('leakwatch.previousOperation');
const kNext = Symbol('leakwatch.nextOperation');
type Linked = PendingOperation & { [kList]?: OperationList | null; [kPrev]?: Linked | null; [kNext]?: Linked | null };

/**
 * The link fields an {@link OperationList} keeps on an operation. An operation class declares them
 * (`[OPERATION_LINKS.list] = null` …) so that joining a list is three stores into fields the
 * object has from its constructor on, not three new properties (a change of hidden class and room
 * allocated for them) per command. Declared per class, not inherited: a derived class's
 * construction costs V8 a lookup of the constructor chain on every `new`.
 */
export const OPERATION_LINKS = { list: kList, prev: kPrev, next: kNext } as const;

/**
 * The operations of one response, in the order they started. Adding and removing one allocates
 * nothing (the links live on the operation, under Symbols that serialization skips; see
 * {@link OPERATION_LINKS}): a request may
 * pipeline a hundred commands on a shared client, and a Set's growth and shrinking would cost more
 * than the rest of the instrumentation.
 */
export class OperationList implements Iterable<PendingOperation> {
  size = 0;
  private head: Linked | null = null;
  private tail: Linked | null = null;

  add(operation: PendingOperation): void {
    const op = operation as Linked;
    if (op[kList] === this) return;
    op[kList] = this;
    op[kPrev] = this.tail;
    op[kNext] = null;
    if (this.tail === null) this.head = op;
    else this.tail[kNext] = op;
    this.tail = op;
    this.size++;
  }

  delete(operation: PendingOperation): boolean {
    const op = operation as Linked;
    if (op[kList] !== this) return false;
    const prev = op[kPrev] ?? null;
    const next = op[kNext] ?? null;
    if (prev === null) this.head = next;
    else prev[kNext] = next;
    if (next === null) this.tail = prev;
    else next[kPrev] = prev;
    op[kList] = op[kPrev] = op[kNext] = null;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<PendingOperation> {
    for (let op = this.head; op !== null; op = op[kNext] ?? null) yield op;
  }
}

export interface Leak<R extends LeakReason = LeakReason> {
  reason: R;
  detectedAt: number;
  /** When it stopped being a leak (the response finished, the connection was released); 0 if not. */
  resolvedAt: number;
}

/** What a report says of a response, frozen when its response object is let go. */
export interface ResponseDetail {
  method: string;
  path: string;
  route: string | null;
  endOverrides: EndOverride[];
}

export class ResponseRecord implements DeadlineItem {
  dueAt = 0;
  prevDue: DeadlineItem | null = null;
  nextDue: DeadlineItem | null = null;
  queued = false;

  /** The route template a framework made known while routing (Express, Koa, Fastify). */
  routeTemplate: string | null = null;
  /** Reads the route template when asked, for frameworks that know it only late (Hono). */
  routeSource: (() => string | null) | null = null;
  /**
   * Per-request state of the http instrumentations (Express's route object, `res.end`
   * replacements), kept here rather than added to the framework's request and response objects:
   * adding a property to those after Express has re-prototyped them costs microseconds a request.
   */
  expressRoute: unknown = undefined;
  endLayers: unknown[] | null = null;
  closedAt = 0;
  outcome: ResponseOutcome | null = null;
  leak: Leak<ResponseLeakReason> | null = null;
  /** Set when the response object is let go while a report may still need it (see freeze()). */
  detail: ResponseDetail | null = null;
  /**
   * Connections this response acquired and has not released, in no order; null until the first.
   * An array, not a Set: a response holds one or two, and a Set cost about 270 bytes a checkout
   * (its table, and a new one when it shrank back to empty).
   */
  connections: ConnectionRecord[] | null = null;
  /** Operations this response has in flight on connections it does not own (a shared Redis client). */
  pendingOps = 0;
  /**
   * Pool checkouts its request asked for that are not served yet (queued, or a new connection still
   * connecting): it waits on the pool meanwhile, not on the app (see Ledger#checkResponse).
   */
  pendingCheckouts = 0;
  /** Those operations, where the instrumentation names them (Redis commands); null until one starts. */
  operations: OperationList | null = null;
  /** What each threshold check saw it do (wrote, waited); null until it outlives one threshold. */
  history: History | null = null;
  /** The method, kept at close for metrics; null while open (read through the probe then). */
  private closedMethod: string | null = null;

  constructor(
    readonly seq: number,
    public target: object | null,
    readonly probe: ResponseProbe,
    readonly startedAt: number,
    public progressMark: number,
  ) {}

  get id(): string {
    return `${process.pid}:r${this.seq}`;
  }

  /** The request method; `UNKNOWN` when it cannot be read. */
  get method(): string {
    if (this.detail !== null) return this.detail.method;
    if (this.closedMethod !== null) return this.closedMethod;
    if (this.target === null) return 'UNKNOWN';
    try {
      return this.probe.method(this.target);
    } catch {
      return 'UNKNOWN';
    }
  }

  /** The route template, from the framework; null when none is known. */
  get route(): string | null {
    if (this.detail !== null) return this.detail.route;
    try {
      const late = this.routeSource?.();
      if (late) return late;
      if (this.routeTemplate !== null || this.target === null) return this.routeTemplate;
      return this.probe.route(this.target);
    } catch {
      return this.routeTemplate;
    }
  }

  /** What a report needs of the response, read now from the response object. Throws what the probe throws. */
  describe(): ResponseDetail {
    const target = this.target;
    if (target === null) return { method: this.method, path: '', route: this.route, endOverrides: [] };
    return { method: this.probe.method(target), path: this.probe.path(target), route: this.route, endOverrides: this.probe.endOverrides(target) };
  }

  /** Lets go of the response object, keeping its method, and `detail` when a report may still need it. */
  letGo(detail: ResponseDetail | null): void {
    if (detail !== null) this.detail ??= detail;
    this.closedMethod = this.method;
    this.target = null;
  }
}

export interface ConnectionInit {
  kind: ConnectionKind;
  /** Pool name (or host:port/database for a bare client); never a password. */
  pool: string;
  /** A pool checkout, as opposed to a dedicated client or Redis connection. */
  pooled: boolean;
  /** The client object, for probes. */
  target?: object;
  probe?: ConnectionProbe;
  /** Where it was acquired, as captured by the caller (see captureStack). */
  stack?: StackCapture | null;
  /** Start busy (connecting) rather than idle. */
  busy?: boolean;
  /**
   * A checkout the pool library releases itself as soon as its one query ends (`pool.query()`, a
   * knex query): the app never holds it, so it is busy, in the library's hands, from acquisition
   * to release. It follows no protocol state and keeps no history (it cannot be idle in the app's
   * hands, which is what every connection leak rule looks for).
   */
  selfReleasing?: boolean;
  /**
   * The owner is the current response, not yet checked against a module's top-level code: the
   * ledger asks (LedgerOptions.madeWhileModuleLoads) only if a leak rule would blame that owner.
   */
  ownerUnverified?: boolean;
}

/** A captured stack whose text is formatted only when read. */
export interface StackCapture {
  readonly stack?: string;
}

export class ConnectionRecord implements DeadlineItem, HeldItem {
  dueAt = 0;
  prevDue: DeadlineItem | null = null;
  nextDue: DeadlineItem | null = null;
  queued = false;
  prevHeld: HeldItem | null = null;
  nextHeld: HeldItem | null = null;
  inHeld = false;

  busy = 0;
  idleState: IdleState = 'idle';
  idleSince: number;
  releasedAt = 0;
  /** Set when the socket went away while the connection was still held. */
  closed: ConnectionClosure | null = null;
  leak: Leak<ConnectionLeakReason> | null = null;
  server: ServerState | null = null;
  /** Settles once the server has answered about this leak (into `server`) or could not; null if not asked. */
  confirmation: Promise<void> | null = null;
  /** State transitions, for connections the leak rules can report (owned or pooled); null for others. */
  history: History | null = null;
  readonly kind: ConnectionKind;
  readonly pool: string;
  readonly pooled: boolean;
  /** See ConnectionInit.selfReleasing. */
  readonly selfReleasing: boolean;
  target: object | null;
  readonly probe: ConnectionProbe | null;
  /** Where it was acquired; null once a released record is let go (see letGo). */
  stack: StackCapture | null;
  /** See ConnectionInit.ownerUnverified; cleared once asked. */
  ownerUnverified: boolean;

  constructor(
    readonly seq: number,
    init: ConnectionInit,
    /** The response whose request acquired it; null for one made outside any request, or shared since (see Ledger#share). */
    public owner: ResponseRecord | null,
    readonly acquiredAt: number,
  ) {
    this.kind = init.kind;
    this.pool = init.pool;
    this.pooled = init.pooled;
    this.selfReleasing = init.selfReleasing === true;
    this.target = init.target ?? null;
    this.probe = init.probe ?? null;
    this.stack = init.stack ?? null;
    this.ownerUnverified = init.ownerUnverified === true && owner !== null && this.stack !== null;
    this.idleSince = acquiredAt;
    if (init.busy || this.selfReleasing) this.busy = 1;
  }

  /**
   * Released and kept for nothing (it never leaked): it lets go of its request and its acquisition
   * stack, as a closed response lets go of its response object. V8 may have made this record in
   * the old generation (it pretenures what its allocation site saw outlive young collections, as
   * checkouts do while a pool warms up), and until a full collection a dead old object's fields
   * keep alive what they point at through every young collection: the request named here, with
   * its record, its connections and the commands it sent, would be promoted, request after
   * request (300 to 600 bytes a request on the realistic endpoint with a young generation fixed
   * by `--min-semi-space-size`, against 20 once let go: bench/memory.bench.mjs).
   */
  letGo(): void {
    this.owner = null;
    this.stack = null;
  }

  get id(): string {
    return `${process.pid}:${this.kind}${this.seq}`;
  }

  get state(): ConnectionState {
    return this.closed !== null ? 'closed' : this.busy > 0 ? 'busy' : this.idleState;
  }

  /** Not released yet: checked out, connected, or lost but still counted by its pool. */
  get isHeld(): boolean {
    return this.releasedAt === 0;
  }
}
