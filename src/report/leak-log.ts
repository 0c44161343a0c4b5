import { isDefaultLog } from '../config.js';
import { steadyNow } from '../core/clock.js';
import type { Ledger, LedgerObserver } from '../core/ledger.js';
import { ConnectionRecord, ResponseRecord, type EndOverride, type ServerState } from '../core/records.js';
import { logFailure } from '../core/guard.js';
import { appSiteOf } from '../core/stack.js';

/**
 * One log line per leak found and per leak resolved, for production, where no report is read: what
 * leaked, on which route, for how long, what it holds, and the root cause (the `res.end`
 * replacements, where the connection was acquired). `text` for people, `json` (one object per line)
 * for log pipelines. Never a query string, SQL parameter, Redis argument or password: paths come
 * without their query, routes are templates, and the server's view is pid, state and age only.
 *
 * A burst of leaks writes at most `linesPerInterval` lines per interval; the rest are counted and
 * one line at the end of the interval says how many were left out. A connection's line waits up to
 * `confirmWaitMs` for its server's answer (pg_stat_activity, CLIENT LIST) and then says what is
 * known; no second line follows when the answer comes later.
 */

export interface LeakLogOptions {
  format: 'text' | 'json';
  /** Receives each line; with leakwatch's default log, json lines go to stderr unprefixed. */
  log: (line: string) => void;
  /** @default 20 */
  linesPerInterval?: number;
  /** @default 60000 */
  intervalMs?: number;
  /** @default 500 */
  confirmWaitMs?: number;
}

export const LEAK_LOG_DEFAULTS = Object.freeze({ linesPerInterval: 20, intervalMs: 60_000, confirmWaitMs: 500 });

/** A response leak or resolution, as written in json (the text line says the same in words). */
export interface ResponseLogEntry {
  event: 'leak' | 'resolved';
  type: 'response';
  id: string;
  reason: string;
  method: string;
  /** Route template; null when no framework made one known. */
  route: string | null;
  /** URL path without its query string. */
  path: string;
  /** Start to now (leak) or to its close (resolved). */
  ageMs: number;
  /** Detection to resolution; only on `resolved`. */
  leakedForMs?: number;
  connections: Array<{ id: string; kind: string; pool: string; state: string }>;
  endOverrides: EndOverride[];
  pendingCommands: Array<{ command: string; connection: string; ageMs: number }>;
}

export interface ConnectionLogEntry {
  event: 'leak' | 'resolved';
  type: 'connection';
  id: string;
  kind: 'pg' | 'redis';
  reason: string;
  pool: string;
  state: string;
  idleMs: number;
  heldMs: number;
  leakedForMs?: number;
  owner: { id: string; method: string; route: string | null; path: string | null; state: 'open' | 'closed' } | null;
  /** `file:line:column` of the first frame of the app's own code where the connection was acquired; null when none was captured. */
  acquiredAt: string | null;
  /** How its socket went away, when `state` is `closed`; else null. */
  closed: { how: string; code: string | null } | null;
  /** When the owner was aborted (its client went away): its `res.end` replacements, the likely root cause. */
  ownerEndOverrides: EndOverride[];
  server: ServerState | null;
}

export interface SuppressedLogEntry {
  event: 'suppressed';
  /** Lines left out in the interval; null at exit, when no later line could give the count. */
  suppressed: number | null;
  intervalMs: number;
}

export type LeakLogEntry = ResponseLogEntry | ConnectionLogEntry | SuppressedLogEntry;

/**
 * Logs each leak and resolution of `ledger` from now on, and returns the undo, which writes the
 * lines still waiting and stops. start() installs one per process (src/start.ts).
 */
export function installLeakLog(ledger: Ledger, options: LeakLogOptions): () => void {
  return new LeakLog(ledger, options).undo;
}

const seconds = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

class LeakLog implements LedgerObserver {
  private readonly write: (line: string) => void;
  private readonly linesPerInterval: number;
  private readonly intervalMs: number;
  private readonly confirmWaitMs: number;
  private readonly unobserve: () => void;
  private windowStart = -Infinity;
  private written = 0;
  private suppressed = 0;
  private suppressedTimer: NodeJS.Timeout | null = null;
  /** Connection lines waiting for the server's answer, each with the function that writes it now. */
  private readonly waiting = new Map<ConnectionRecord, () => void>();
  /** In the process's 'exit': nothing asynchronous runs any more, so every line is written at once. */
  private exiting = false;
  private exitNoticeWritten = false;
  private stopped = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly options: LeakLogOptions,
  ) {
    const raw = (line: string) => void process.stderr.write(line + '\n');
    const sink = options.format === 'json' && isDefaultLog(options.log) ? raw : options.log;
    // A log function that throws must not take the app down, here or in a timer.
    this.write = (line) => guarded(() => sink(line));
    this.linesPerInterval = options.linesPerInterval ?? LEAK_LOG_DEFAULTS.linesPerInterval;
    this.intervalMs = options.intervalMs ?? LEAK_LOG_DEFAULTS.intervalMs;
    this.confirmWaitMs = options.confirmWaitMs ?? LEAK_LOG_DEFAULTS.confirmWaitMs;
    this.unobserve = ledger.observe(this);
    process.on('exit', this.onExit);
  }

  responseLeaked(response: ResponseRecord): void {
    this.emit(this.responseEntry('leak', response));
  }

  connectionLeaked(connection: ConnectionRecord): void {
    if (this.exiting) {
      this.emit(this.connectionEntry('leak', connection));
      return;
    }
    // The ledger asks the server right after telling its observers: look once it has.
    queueMicrotask(() => guarded(() => this.whenConfirmed(connection)));
  }

  leakResolved(item: ResponseRecord | ConnectionRecord): void {
    if (item instanceof ResponseRecord) {
      this.emit(this.responseEntry('resolved', item));
      return;
    }
    this.waiting.get(item)?.(); // its leak line first
    this.emit(this.connectionEntry('resolved', item));
  }

  private whenConfirmed(connection: ConnectionRecord): void {
    if (this.stopped) return;
    const confirmation = connection.confirmation;
    if (confirmation === null || connection.server?.state != null) {
      this.emit(this.connectionEntry('leak', connection));
      return;
    }
    let timer: NodeJS.Timeout | null = null;
    const writeNow = () =>
      guarded(() => {
        if (!this.waiting.delete(connection)) return;
        if (timer !== null) clearTimeout(timer);
        this.emit(this.connectionEntry('leak', connection));
      });
    this.waiting.set(connection, writeNow);
    timer = setTimeout(writeNow, this.confirmWaitMs);
    timer.unref();
    void confirmation.then(writeNow, writeNow);
  }

  // ---- entries -----------------------------------------------------------------------------

  private responseEntry(event: 'leak' | 'resolved', response: ResponseRecord): ResponseLogEntry {
    const now = this.ledger.now();
    const detail = response.detail;
    const connections = [...(response.connections ?? [])].map((c) => ({ id: c.id, kind: c.kind, pool: c.pool, state: c.state }));
    const entry: ResponseLogEntry = {
      event,
      type: 'response',
      id: response.id,
      reason: response.leak?.reason ?? 'unclosed',
      method: response.method,
      route: response.route,
      path: detail?.path ?? '',
      ageMs: (response.closedAt || now) - response.startedAt,
      connections,
      endOverrides: detail?.endOverrides ?? [],
      pendingCommands: [...(response.operations ?? [])].map((op) => ({ command: op.command, connection: op.connection.id, ageMs: now - op.startedAt })),
    };
    if (event === 'resolved' && response.leak !== null) entry.leakedForMs = response.leak.resolvedAt - response.leak.detectedAt;
    return entry;
  }

  private connectionEntry(event: 'leak' | 'resolved', connection: ConnectionRecord): ConnectionLogEntry {
    const until = connection.releasedAt || this.ledger.now();
    const owner = connection.owner;
    const entry: ConnectionLogEntry = {
      event,
      type: 'connection',
      id: connection.id,
      kind: connection.kind,
      reason: connection.leak?.reason ?? 'held-after-response-closed',
      pool: connection.pool,
      state: connection.state,
      idleMs: connection.busy > 0 ? 0 : Math.max(0, until - connection.idleSince),
      heldMs: until - connection.acquiredAt,
      owner:
        owner === null
          ? null
          : {
              id: owner.id,
              method: owner.method,
              route: owner.route,
              path: owner.detail?.path ?? null,
              state: owner.closedAt === 0 ? 'open' : 'closed',
            },
      acquiredAt: appSiteOf(connection.stack),
      closed: connection.closed === null ? null : { how: connection.closed.how, code: connection.closed.code },
      ownerEndOverrides: owner !== null && owner.outcome === 'aborted' ? (owner.detail?.endOverrides ?? []) : [],
      // At resolution what the server said at detection is stale: not repeated.
      server: event === 'resolved' ? null : (connection.server ?? this.identityOf(connection)),
    };
    if (event === 'resolved' && connection.leak !== null) entry.leakedForMs = connection.leak.resolvedAt - connection.leak.detectedAt;
    return entry;
  }

  /** The server-side id known without asking (pg backend pid), for a line written before the ledger asked. */
  private identityOf(connection: ConnectionRecord): ServerState | null {
    try {
      const identity = connection.target !== null ? connection.probe?.serverIdentity?.(connection.target) : null;
      return identity ? { ...identity, state: null, stateAgeMs: null } : null;
    } catch {
      return null;
    }
  }

  // ---- writing, rate-limited ---------------------------------------------------------------

  private emit(entry: ResponseLogEntry | ConnectionLogEntry): void {
    if (this.stopped) return;
    const now = steadyNow(); // a step of the wall clock must not hold lines back for its length
    if (now - this.windowStart >= this.intervalMs) {
      this.writeSuppressed();
      this.windowStart = now;
      this.written = 0;
    }
    if (this.written < this.linesPerInterval) {
      this.written++;
      this.writeEntry(entry);
      return;
    }
    this.suppressed++;
    if (this.exiting) {
      if (!this.exitNoticeWritten) {
        this.exitNoticeWritten = true;
        this.write(this.render({ event: 'suppressed', suppressed: null, intervalMs: this.intervalMs }, 'more leak lines left out at exit; the report has every leak'));
      }
      return;
    }
    if (this.suppressedTimer === null) {
      this.suppressedTimer = setTimeout(() => {
        this.suppressedTimer = null;
        guarded(() => this.writeSuppressed());
      }, this.windowStart + this.intervalMs - now);
      this.suppressedTimer.unref();
    }
  }

  private writeSuppressed(): void {
    if (this.suppressedTimer !== null) clearTimeout(this.suppressedTimer);
    this.suppressedTimer = null;
    const n = this.suppressed;
    if (n === 0) return;
    this.suppressed = 0;
    const text =
      `${n} more leak line${n === 1 ? '' : 's'} left out in the last ${seconds(this.intervalMs)} ` +
      `(at most ${this.linesPerInterval} per ${seconds(this.intervalMs)}); metrics and reports count every leak`;
    this.write(this.render({ event: 'suppressed', suppressed: n, intervalMs: this.intervalMs }, text));
  }

  private writeEntry(entry: ResponseLogEntry | ConnectionLogEntry): void {
    this.write(this.render(entry, entry.type === 'response' ? responseText(entry) : connectionText(entry)));
  }

  private render(entry: LeakLogEntry, text: string): string {
    if (this.options.format === 'text') return text;
    const level = entry.event === 'leak' ? 'warn' : 'info';
    return JSON.stringify({ time: new Date().toISOString(), level, logger: 'leakwatch', msg: text, ...entry });
  }

  private readonly onExit = (): void => {
    this.exiting = true;
    for (const writeNow of [...this.waiting.values()]) writeNow();
    this.writeSuppressed();
  };

  readonly undo = (): void => {
    if (this.stopped) return;
    for (const writeNow of [...this.waiting.values()]) writeNow();
    this.writeSuppressed();
    this.stopped = true;
    this.unobserve();
    process.removeListener('exit', this.onExit);
  };
}

/** Runs `fn`, logging what it throws: leak lines are written from timers and microtasks too. */
function guarded(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    logFailure('writing a leak log line', error);
  }
}

function endVerdict(o: EndOverride): string {
  return !o.called ? 'never called' : o.calledThrough ? 'called, and called through' : 'called, but did not call the end it replaced';
}

function requestText(method: string, route: string | null, path: string | null): string {
  if (route === null || route === path) return `${method} ${path ?? '(path unknown)'}`;
  return `${method} ${route}${path ? ` (path ${path})` : ''}`;
}

function serverText(server: ServerState | null, closed: boolean): string | null {
  if (server === null) return null;
  const id = server.pid !== undefined ? `pid ${server.pid}` : server.clientId !== undefined ? `client id ${server.clientId}` : 'the server';
  if (closed) return `server ${id}, its session is gone`;
  if (server.state === null) return `server ${id}, state not confirmed`;
  return `server says ${id}, ${server.state}${server.stateAgeMs != null ? ` for ${seconds(server.stateAgeMs)}` : ''}`;
}

export function responseText(e: ResponseLogEntry): string {
  const what = `response ${e.id} ${requestText(e.method, e.route, e.path)} [${e.reason}]`;
  if (e.event === 'resolved') {
    return `resolved: ${what} finished after ${seconds(e.ageMs)}${e.leakedForMs !== undefined ? `, ${seconds(e.leakedForMs)} after it was reported` : ''}`;
  }
  const parts = [`leaked ${what}: ${e.reason === 'open-at-exit' ? `still open at exit after ${seconds(e.ageMs)}` : `open ${seconds(e.ageMs)}, stalled`}`];
  for (const o of e.endOverrides) parts.push(`res.end replaced at ${o.at}: ${endVerdict(o)}`);
  if (e.connections.length > 0) parts.push(`holds ${e.connections.map((c) => `${c.kind} ${c.id} on ${c.pool} (${c.state})`).join(', ')}`);
  for (const p of e.pendingCommands) parts.push(`waits on ${p.command.toUpperCase()} sent ${seconds(p.ageMs)} ago on shared connection ${p.connection}`);
  return parts.join('; ');
}

export function connectionText(e: ConnectionLogEntry): string {
  const what = `connection ${e.kind} ${e.id} on ${e.pool} [${e.reason}]`;
  if (e.event === 'resolved') {
    return `resolved: ${what} released after ${seconds(e.heldMs)} held${e.leakedForMs !== undefined ? `, ${seconds(e.leakedForMs)} after it was reported` : ''}`;
  }
  const owner = e.owner === null ? 'acquired outside any request' : `owner ${e.owner.id} ${requestText(e.owner.method, e.owner.route, e.owner.path)}, ${e.owner.state}`;
  const state = e.closed === null ? e.state : `closed (${e.closed.how}${e.closed.code ? ` ${e.closed.code}` : ''})`;
  const parts = [`leaked ${what}: ${state} for ${seconds(e.idleMs)}, held ${seconds(e.heldMs)}`, owner];
  for (const o of e.ownerEndOverrides) parts.push(`the owner's res.end replaced at ${o.at}: ${endVerdict(o)}`);
  if (e.acquiredAt !== null) parts.push(`acquired at ${e.acquiredAt}`);
  const server = serverText(e.server, e.closed !== null);
  if (server !== null) parts.push(server);
  return parts.join('; ');
}
