import { isDefaultLog } from '../config.js';
import { logFailure } from '../core/guard.js';
import type { Ledger } from '../core/ledger.js';
import type { PoolWaitObserver, PoolWaits, WatchedPool } from '../core/pool-waits.js';
import type { PoolReading } from '../pools/followed.js';
import { countsText, duration, ownerText, serverText, takeHolders, type HeldPool, type Holder, type HolderOwner } from './holders.js';

/**
 * One log line when a pool is exhausted (checkouts waiting and no idle connection for the
 * exhaustion threshold), naming its longest holders and the routes that wait: the live picture the
 * people on call need when `timeout exceeded when trying to connect` starts. While the pool stays
 * exhausted, one line per interval (a minute by default) per pool; exhaustions that begin within an
 * interval of the last line are counted in the next one. The `leakLog` format (`text`, `json`)
 * and `log` apply; `leakwatch_db_client_pool_exhaustions_total` counts every exhaustion.
 */

export interface ExhaustionLogOptions {
  format: 'text' | 'json';
  log: (line: string) => void;
  /** @default 60000 */
  intervalMs?: number;
  /** Holders named in a line, longest held first. @default 5 */
  holders?: number;
  /** For tests: where the pools are read from. */
  pools?: () => PoolReading[];
}

export const EXHAUSTION_LOG_DEFAULTS = Object.freeze({ intervalMs: 60_000, holders: 5 });

/** An exhaustion line, as written in json (the text line says the same in words). */
export interface ExhaustionLogEntry {
  event: 'exhausted' | 'still-exhausted';
  type: 'pool';
  kind: 'pg' | 'redis';
  pool: string;
  exhaustedForMs: number;
  counts: HeldPool['counts'];
  /** Checkouts waiting now; the longest has waited `longestWaitMs`. */
  waiting: number;
  longestWaitMs: number;
  /** The routes of the waiting checkouts, most first. */
  waitingRoutes: Array<{ method: string | null; route: string | null; count: number }>;
  /** Connections held, of which `holders` are the longest held. */
  held: number;
  holders: Holder[];
  /** Exhaustions of this pool since the last line that got no line of their own. */
  notLogged: number;
}

interface PoolLog {
  lastLineAt: number;
  notLogged: number;
}

/** Logs exhaustions of `waits`' pools from now on; returns the undo. start() installs one per process. */
export function installExhaustionLog(waits: PoolWaits, ledger: Ledger, options: ExhaustionLogOptions): () => void {
  const log = new ExhaustionLog(waits, ledger, options);
  const unobserve = waits.observe(log);
  return () => unobserve();
}

class ExhaustionLog implements PoolWaitObserver {
  private readonly write: (line: string) => void;
  private readonly intervalMs: number;
  private readonly perPool = new WeakMap<WatchedPool, PoolLog>();

  constructor(
    private readonly waits: PoolWaits,
    private readonly ledger: Ledger,
    private readonly options: ExhaustionLogOptions,
  ) {
    const raw = (line: string) => void process.stderr.write(line + '\n');
    const sink = options.format === 'json' && isDefaultLog(options.log) ? raw : options.log;
    this.write = (line) => {
      try {
        sink(line);
      } catch (error) {
        logFailure('writing a pool exhaustion line', error);
      }
    };
    this.intervalMs = options.intervalMs ?? EXHAUSTION_LOG_DEFAULTS.intervalMs;
  }

  poolExhausted(pool: WatchedPool): void {
    const state = this.stateOf(pool);
    if (this.due(state)) this.line('exhausted', pool, state);
    else state.notLogged++;
  }

  poolStillExhausted(pool: WatchedPool): void {
    const state = this.stateOf(pool);
    if (this.due(state)) this.line('still-exhausted', pool, state);
  }

  private stateOf(pool: WatchedPool): PoolLog {
    let state = this.perPool.get(pool);
    if (state === undefined) this.perPool.set(pool, (state = { lastLineAt: -Infinity, notLogged: 0 }));
    return state;
  }

  private due(state: PoolLog): boolean {
    return this.waits.now() - state.lastLineAt >= this.intervalMs;
  }

  private line(event: ExhaustionLogEntry['event'], pool: WatchedPool, state: PoolLog): void {
    if (pool.name === null) return;
    const entry = this.entry(event, pool, pool.name, state.notLogged);
    if (entry === null) return;
    state.lastLineAt = this.waits.now();
    state.notLogged = 0;
    const text = exhaustionText(entry);
    this.write(this.options.format === 'text' ? text : JSON.stringify({ time: new Date().toISOString(), level: 'warn', logger: 'leakwatch', msg: text, ...entry }));
  }

  private entry(event: ExhaustionLogEntry['event'], pool: WatchedPool, name: string, notLogged: number): ExhaustionLogEntry | null {
    const snapshot = takeHolders(
      { ledger: this.ledger, exhaustionThresholdMs: this.waits.exhaustionThresholdMs, pools: this.options.pools },
      { only: { kind: pool.kind, pool: name } },
    );
    const held = snapshot.pools[0];
    if (held === undefined) return null;
    const waiting = held.waiters.length + held.waitersLeftOut;
    return {
      event,
      type: 'pool',
      kind: pool.kind,
      pool: name,
      exhaustedForMs: held.exhaustedForMs ?? 0,
      counts: held.counts,
      waiting,
      longestWaitMs: held.waiters[0]?.waitedMs ?? 0,
      waitingRoutes: routesOf(held.waiters.map((w) => w.owner)),
      held: held.holders.length + held.holdersLeftOut,
      holders: held.holders.slice(0, this.options.holders ?? EXHAUSTION_LOG_DEFAULTS.holders),
      notLogged,
    };
  }
}

function routesOf(owners: Array<HolderOwner | null>): ExhaustionLogEntry['waitingRoutes'] {
  const byRoute = new Map<string, ExhaustionLogEntry['waitingRoutes'][number]>();
  for (const owner of owners) {
    const method = owner?.method ?? null;
    const route = owner === null ? null : (owner.route ?? null);
    const key = `${method} ${route}`;
    const found = byRoute.get(key);
    if (found !== undefined) found.count++;
    else byRoute.set(key, { method, route, count: 1 });
  }
  return [...byRoute.values()].sort((a, b) => b.count - a.count);
}

function holderText(h: Holder): string {
  const state = h.state === 'busy' ? 'busy' : `${h.state} ${duration(h.idleMs)}`;
  const parts = [`${h.connection} ${state}, held ${duration(h.heldMs)}, by ${ownerText(h.owner)}`];
  if (h.acquisitionSite !== null) parts.push(`acquired at ${h.acquisitionSite}`);
  const server = serverText(h.server);
  if (server !== '') parts.push(`server ${server}`);
  if (h.leak !== null) parts.push(`leaked (${h.leak})`);
  return parts.join(', ');
}

export function exhaustionText(e: ExhaustionLogEntry): string {
  const head =
    e.event === 'exhausted'
      ? `pool exhausted: ${e.kind === 'pg' ? 'postgresql' : 'redis'} ${e.pool} has had checkouts waiting with no idle connection for ${duration(e.exhaustedForMs)}`
      : `pool still exhausted: ${e.kind === 'pg' ? 'postgresql' : 'redis'} ${e.pool}, for ${duration(e.exhaustedForMs)}`;
  const routes = e.waitingRoutes.map((r) => `${r.count} × ${r.method === null ? 'no request' : `${r.method} ${r.route ?? '(no route)'}`}`).join(', ');
  const parts = [`${head} (${countsText(e.counts)}; ${e.waiting} waiting, longest ${duration(e.longestWaitMs)}${routes ? `: ${routes}` : ''})`];
  const more = e.held - e.holders.length;
  if (e.holders.length > 0) parts.push(`held longest by ${e.holders.map(holderText).join('; ')}${more > 0 ? `; and ${more} more` : ''}`);
  if (e.notLogged > 0) parts.push(`${e.notLogged} more exhaustion${e.notLogged === 1 ? '' : 's'} of this pool since the last line`);
  return parts.join('; ');
}
