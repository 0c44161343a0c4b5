import type { Ledger } from '../core/ledger.js';
import type { PendingCheckout, PoolCounts } from '../core/pool-waits.js';
import type { ConnectionKind, ConnectionLeakReason, ConnectionRecord, ConnectionState, ResponseRecord, ServerState } from '../core/records.js';
import type { Runtime } from '../core/runtime.js';
import { appSiteOf } from '../core/stack.js';
import { followedPools, type PoolReading } from '../pools/followed.js';

/**
 * The holders snapshot: every connection held now, by whom, for how long, in which state, acquired
 * where, grouped by pool; and beneath each pool the checkouts waiting for it. Read from the
 * ledger's held connections and the pools' watches when asked (`started.holders()`,
 * `GET /leakwatch/holders`, the holders signal, the exhaustion log line); nothing is kept for it.
 * Never a query string, SQL parameter, Redis argument or password: owners are named by method,
 * route template and path without its query, connections by id, state and the server's pid.
 */

/** The request behind a held connection or a waiting checkout. */
export interface HolderOwner {
  /** The response's id, as reports and leak lines name it (`4211:r17`). */
  id: string;
  /** The request method; `UNKNOWN` when it cannot be read. */
  method: string;
  /** Route template; null when no framework made one known. */
  route: string | null;
  /** URL path without its query string; null when it can no longer be read. */
  path: string | null;
  /** `leaked`: open and found leaked; `finished` / `aborted`: closed. */
  state: 'open' | 'leaked' | 'finished' | 'aborted';
  /** Since the request started (to its close, when closed). */
  ageMs: number;
}

/** One connection held now. */
export interface Holder {
  /** The connection's id (`4211:pg7`). */
  connection: string;
  /** `busy`, `idle`, `idle-in-transaction`, `idle-in-transaction-aborted`, `subscriber`, or `closed` (its socket is gone). */
  state: ConnectionState;
  /** A checkout of its pool (as opposed to a client or connection of its own). */
  pooled: boolean;
  /** Since it was checked out (or connected). */
  heldMs: number;
  /** How long it has waited on the app (idle kinds) or been closed; 0 while busy. */
  idleMs: number;
  /** The request that acquired it; null when acquired outside any request. */
  owner: HolderOwner | null;
  /** `file:line:column` of the app's own code where it was acquired; null when none was captured. */
  acquisitionSite: string | null;
  /** The leak it was found to be, if found and not resolved. */
  leak: ConnectionLeakReason | null;
  /** What the server said when asked (a leak is confirmed), or the identity known without asking (pg's backend pid). */
  server: ServerState | null;
}

/** A checkout waiting for its pool: asked of it at its max, with no idle connection for it. */
export interface Waiter {
  /** Since the checkout was asked for. */
  waitedMs: number;
  /** The request that asked; null outside any request. */
  owner: HolderOwner | null;
  /** `file:line:column` of the app's own code where it asked; null when none was captured. */
  requestSite: string | null;
}

/** The connections of one pool (or, for connections of their own, one server), and its waiters. */
export interface HeldPool {
  /** `pg` or `redis`. */
  kind: ConnectionKind;
  /** `postgresql` or `redis`, as the metrics' `db_system`. */
  dbSystem: string;
  /** The pool's name, as reports and metrics have it. */
  pool: string;
  /** The pool's own counts (pools leakwatch follows); null for connections of their own to a server. */
  counts: PoolCounts | null;
  /** How long the pool has been exhausted (waiters and no idle connection past the threshold); null when it is not. */
  exhaustedForMs: number | null;
  /** Longest held first. */
  holders: Holder[];
  /** Holders not listed (past the limit of a list). */
  holdersLeftOut: number;
  /** Longest waiting first. */
  waiters: Waiter[];
  /** Waiters not listed (past the limit of a list). */
  waitersLeftOut: number;
}

/** The holders snapshot: `started.holders()`, `GET /leakwatch/holders`, the holders signal. */
export interface HoldersSnapshot {
  /** When it was taken (ISO 8601). */
  takenAt: string;
  /** The process it describes. */
  pid: number;
  /** How long a pool may have waiters, none idle, before it is exhausted (`exhaustionThreshold`). */
  exhaustionThresholdMs: number;
  /** Pools with waiters first (most first), then by kind and name. */
  pools: HeldPool[];
}

/** Rows listed per pool and list; the rest are counted in `holdersLeftOut` / `waitersLeftOut`. */
export const HOLDERS_LIST_LIMIT = 200;

const DB_SYSTEM: Record<ConnectionKind, string> = { pg: 'postgresql', redis: 'redis' };

function pathOf(response: ResponseRecord): string | null {
  if (response.detail !== null) return response.detail.path;
  if (response.target === null) return null;
  try {
    return response.probe.path(response.target);
  } catch {
    return null;
  }
}

export function ownerOf(response: ResponseRecord | null | undefined, now: number): HolderOwner | null {
  if (response === null || response === undefined) return null;
  const open = response.closedAt === 0;
  const leaked = response.leak !== null && response.leak.resolvedAt === 0;
  return {
    id: response.id,
    method: response.method,
    route: response.route,
    path: pathOf(response),
    state: open ? (leaked ? 'leaked' : 'open') : (response.outcome ?? 'finished'),
    ageMs: Math.max(0, (response.closedAt || now) - response.startedAt),
  };
}

function serverOf(connection: ConnectionRecord): ServerState | null {
  if (connection.server !== null) return connection.server;
  try {
    const identity = connection.target !== null ? connection.probe?.serverIdentity?.(connection.target) : null;
    return identity ? { ...identity, state: null, stateAgeMs: null } : null;
  } catch {
    return null;
  }
}

export function holderOf(connection: ConnectionRecord, now: number): Holder {
  const leak = connection.leak;
  return {
    connection: connection.id,
    state: connection.state,
    pooled: connection.pooled,
    heldMs: Math.max(0, now - connection.acquiredAt),
    idleMs: connection.busy > 0 ? 0 : Math.max(0, now - connection.idleSince),
    owner: ownerOf(connection.owner, now),
    acquisitionSite: appSiteOf(connection.stack),
    leak: leak !== null && leak.resolvedAt === 0 ? leak.reason : null,
    server: serverOf(connection),
  };
}

export function waiterOf(checkout: PendingCheckout, now: number): Waiter {
  return { waitedMs: Math.max(0, now - checkout.requestedAt), owner: ownerOf(checkout.owner, now), requestSite: appSiteOf(checkout.stack) };
}

interface Group {
  kind: ConnectionKind;
  pool: string;
  readings: PoolReading[];
  connections: ConnectionRecord[];
}

const keyOf = (kind: ConnectionKind, pool: string) => `${kind}\u0000${pool}`;

/** The connections and waiters of `readings` and `held`, grouped by kind and pool name. */
function groups(held: Iterable<ConnectionRecord>, readings: PoolReading[]): Group[] {
  const byKey = new Map<string, Group>();
  const groupOf = (kind: ConnectionKind, pool: string): Group => {
    const key = keyOf(kind, pool);
    let group = byKey.get(key);
    if (group === undefined) byKey.set(key, (group = { kind, pool, readings: [], connections: [] }));
    return group;
  };
  for (const reading of readings) groupOf(reading.watch.kind, reading.name).readings.push(reading);
  for (const connection of held) groupOf(connection.kind, connection.pool).connections.push(connection);
  return [...byKey.values()];
}

function sumCounts(readings: PoolReading[]): PoolCounts | null {
  if (readings.length === 0) return null;
  const sum: PoolCounts = { total: 0, idle: 0, used: 0, pending: 0, max: 0 };
  for (const { counts } of readings) {
    sum.total += counts.total;
    sum.idle += counts.idle;
    sum.used += counts.used;
    sum.pending += counts.pending;
    sum.max += counts.max;
  }
  return sum;
}

function heldPool(group: Group, now: number, limit: number): HeldPool {
  const connections = group.connections.sort((a, b) => a.acquiredAt - b.acquiredAt);
  const waiting: PendingCheckout[] = [];
  let exhaustedSince = 0;
  for (const { watch } of group.readings) {
    for (const checkout of watch.waiters) waiting.push(checkout);
    const since = watch.waiters.exhaustedSince;
    if (since !== 0 && (exhaustedSince === 0 || since < exhaustedSince)) exhaustedSince = since;
  }
  waiting.sort((a, b) => a.requestedAt - b.requestedAt);
  return {
    kind: group.kind,
    dbSystem: DB_SYSTEM[group.kind],
    pool: group.pool,
    counts: sumCounts(group.readings),
    exhaustedForMs: exhaustedSince === 0 ? null : Math.max(0, now - exhaustedSince),
    holders: connections.slice(0, limit).map((c) => holderOf(c, now)),
    holdersLeftOut: Math.max(0, connections.length - limit),
    waiters: waiting.slice(0, limit).map((c) => waiterOf(c, now)),
    waitersLeftOut: Math.max(0, waiting.length - limit),
  };
}

/** What a snapshot reads: the ledger's held connections, and the pools followed now. */
export interface HoldersSource {
  ledger: Ledger;
  exhaustionThresholdMs: number;
  pools?: () => PoolReading[];
}

/** The holders snapshot now. `only` keeps one pool (for the exhaustion line). */
export function takeHolders(source: HoldersSource, options: { limit?: number; only?: { kind: ConnectionKind; pool: string } } = {}): HoldersSnapshot {
  const { ledger } = source;
  const now = ledger.now();
  const limit = options.limit ?? HOLDERS_LIST_LIMIT;
  let readings = (source.pools ?? followedPools)();
  let held: Iterable<ConnectionRecord> = ledger.held;
  const only = options.only;
  if (only !== undefined) {
    readings = readings.filter((r) => r.watch.kind === only.kind && r.name === only.pool);
    held = [...ledger.held].filter((c) => c.kind === only.kind && c.pool === only.pool);
  }
  const pools = groups(held, readings).map((group) => heldPool(group, now, limit));
  const waiting = (p: HeldPool) => p.waiters.length + p.waitersLeftOut;
  pools.sort((a, b) => waiting(b) - waiting(a) || a.kind.localeCompare(b.kind) || a.pool.localeCompare(b.pool));
  return { takenAt: new Date(now + ledger.wallOffset()).toISOString(), pid: process.pid, exhaustionThresholdMs: source.exhaustionThresholdMs, pools };
}

/** The snapshot of a runtime now. */
export function holdersOf(runtime: Runtime): HoldersSnapshot {
  return takeHolders({ ledger: runtime.ledger, exhaustionThresholdMs: runtime.waits.exhaustionThresholdMs });
}

// ---- text ----------------------------------------------------------------------------------

export const duration = (ms: number): string => (ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

/** `4211:r5 GET /orders/:id (path /orders/7) open 2.0 s`. */
export function ownerText(owner: HolderOwner | null): string {
  if (owner === null) return 'no request';
  const what = owner.route === null || owner.route === owner.path ? (owner.path ?? '(path unknown)') : `${owner.route}${owner.path ? ` (path ${owner.path})` : ''}`;
  return `${owner.id} ${owner.method} ${what} ${owner.state} ${duration(owner.ageMs)}`;
}

export function serverText(server: ServerState | null): string {
  if (server === null) return '';
  const id = server.pid !== undefined ? `pid ${server.pid}` : server.clientId !== undefined ? `client ${server.clientId}` : 'server';
  return server.state === null ? id : `${id} ${server.state}${server.stateAgeMs != null ? ` ${duration(server.stateAgeMs)}` : ''}`;
}

export function countsText(counts: PoolCounts | null): string {
  if (counts === null) return 'connections of their own';
  return `${counts.used} of max ${counts.max || '?'} used, ${counts.idle} idle, ${counts.pending} queued`;
}

/** Rows as columns padded to their widest cell. */
function table(header: string[], rows: string[][], indent: string): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The snapshot as a plain-text table: a heading per pool, its holders, its waiters beneath. */
export function holdersText(snapshot: HoldersSnapshot): string[] {
  const lines = [`leakwatch holders of pid ${snapshot.pid} at ${snapshot.takenAt}: ${snapshot.pools.length === 0 ? 'no connection held, no checkout waiting' : `${snapshot.pools.length} pool${snapshot.pools.length === 1 ? '' : 's'}`}`];
  for (const pool of snapshot.pools) {
    const exhausted = pool.exhaustedForMs === null ? '' : `; EXHAUSTED for ${duration(pool.exhaustedForMs)}`;
    const waiting = pool.waiters.length + pool.waitersLeftOut;
    lines.push('', `${pool.dbSystem} ${pool.pool}: ${countsText(pool.counts)}; ${pool.holders.length + pool.holdersLeftOut} held, ${waiting} waiting${exhausted}`);
    if (pool.holders.length > 0) {
      const rows = pool.holders.map((h) => [
        duration(h.heldMs),
        h.state === 'busy' ? '-' : duration(h.idleMs),
        h.leak === null ? h.state : `${h.state} LEAKED ${h.leak}`,
        h.connection,
        serverText(h.server) || '-',
        h.acquisitionSite ?? '-',
        ownerText(h.owner),
      ]);
      lines.push(...table(['held', 'idle', 'state', 'connection', 'server', 'acquired at', 'owner'], rows, '  '));
    }
    if (pool.holdersLeftOut > 0) lines.push(`  … ${pool.holdersLeftOut} more held`);
    if (pool.waiters.length > 0) {
      lines.push(`  waiting:`);
      const rows = pool.waiters.map((w) => [duration(w.waitedMs), w.requestSite ?? '-', ownerText(w.owner)]);
      lines.push(...table(['waited', 'asked at', 'owner'], rows, '    '));
    }
    if (pool.waitersLeftOut > 0) lines.push(`    … ${pool.waitersLeftOut} more waiting`);
  }
  return lines;
}
