import { steadyNow } from '../core/clock.js';
import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ServerState } from '../core/records.js';
import { outsideAnyContext } from '../core/runtime.js';
import { type PgClient, type PgClientClass } from './internal-types.js';
import { privateClientClass } from './private-copy.js';

/**
 * Asks PostgreSQL what it thinks of a connection suspected of leaking: `pg_stat_activity.state` and
 * how long it has been in it, for the connection's backend pid.
 *
 * The question goes through a connection of leakwatch's own, made the first time it is needed,
 * never through the app's pool (which may be the very thing that is exhausted), from a private copy
 * of the app's pg (private-copy.ts says why): no agent or patcher on the app's `Client` sees it, and
 * it runs outside any request's async context, so it is nobody's child span. Lookups are batched
 * into one query at most every {@link MIN_INTERVAL_MS}; when the reader cannot connect, lookups
 * resolve null for {@link RETRY_AFTER_MS} and leakwatch carries on without confirmation. Only pid,
 * state and age are read: never the query text.
 */

const ACTIVITY_SQL =
  'SELECT pid, state, (extract(epoch FROM clock_timestamp() - state_change) * 1000)::float8 AS age_ms ' +
  'FROM pg_stat_activity WHERE pid = ANY($1::int[])';

export const MIN_INTERVAL_MS = 100;
export const RETRY_AFTER_MS = 5_000;
const CLOSE_AFTER_IDLE_MS = 30_000;
const MAX_WAITING = 1_000;
const TIMEOUT_MS = 2_000;

type Resolve = (state: ServerState | null) => void;

class ActivityReader {
  private client: PgClient | null = null;
  private waiting = new Map<number, Resolve[]>();
  private timer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private running = false;
  private lastRunAt = -Infinity;
  private retryAt = 0;

  constructor(
    private readonly Client: PgClientClass,
    private readonly config: Record<string, unknown>,
  ) {}

  lookup(pid: number): Promise<ServerState | null> {
    if (steadyNow() < this.retryAt) return Promise.resolve(null);
    const resolvers = this.waiting.get(pid);
    if (resolvers === undefined && this.waiting.size >= MAX_WAITING) return Promise.resolve(null);
    return new Promise<ServerState | null>((resolve) => {
      if (resolvers !== undefined) resolvers.push(resolve);
      else this.waiting.set(pid, [resolve]);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer !== null || this.running || this.waiting.size === 0) return;
    const delay = Math.max(0, this.lastRunAt + MIN_INTERVAL_MS - steadyNow());
    // Outside any request: nothing the reader does is charged to one, or made a child of its span.
    this.timer = outsideAnyContext(() => setTimeout(() => void this.run(), delay));
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = null;
    const batch = this.waiting;
    this.waiting = new Map();
    this.running = true;
    this.lastRunAt = steadyNow();
    let rows: Array<Record<string, unknown>> | null = null;
    let client: PgClient | null = null;
    try {
      client = await this.connection();
      rows = (await client.query(ACTIVITY_SQL, [[...batch.keys()]])).rows;
    } catch (error) {
      // A reader closed on purpose (stop) fails its query quietly; anything else backs off.
      if (client === null || this.client === client) {
        logFailure('confirming pg connections with pg_stat_activity', error);
        this.retryAt = steadyNow() + RETRY_AFTER_MS;
        this.close();
      }
    } finally {
      this.running = false;
    }
    const byPid = new Map<number, Record<string, unknown>>();
    if (rows !== null) for (const row of rows) byPid.set(Number(row.pid), row);
    for (const [pid, resolvers] of batch) {
      const row = byPid.get(pid);
      const state: ServerState | null =
        row === undefined
          ? null
          : {
              pid,
              state: typeof row.state === 'string' ? row.state : null,
              stateAgeMs: typeof row.age_ms === 'number' ? Math.max(0, Math.round(row.age_ms)) : null,
            };
      for (const resolve of resolvers) resolve(state);
    }
    this.armIdleClose();
    this.schedule();
  }

  private async connection(): Promise<PgClient> {
    if (this.client !== null) return this.client;
    const client = new this.Client({
      ...this.config,
      // Named for the DBA who finds it: leakwatch, asking for this process.
      application_name: `leakwatch:${process.pid}`,
      connectionTimeoutMillis: TIMEOUT_MS,
      statement_timeout: TIMEOUT_MS,
      query_timeout: TIMEOUT_MS + 1000,
    });
    // An 'error' without a listener would crash the app; a lost reader is simply made again.
    client.on('error', (error: unknown) => {
      logFailure('the pg_stat_activity reader connection', error);
      if (this.client === client) this.client = null;
    });
    client.connection?.stream?.unref?.();
    this.client = client;
    try {
      await client.connect();
    } catch (error) {
      if (this.client === client) this.client = null;
      throw error;
    }
    return client;
  }

  private armIdleClose(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.running && this.waiting.size === 0) this.close();
    }, CLOSE_AFTER_IDLE_MS);
    this.idleTimer.unref();
  }

  close(): void {
    const client = this.client;
    this.client = null;
    if (client === null) return;
    try {
      void Promise.resolve(client.end()).catch(() => {});
    } catch {
      // already gone
    }
  }
}

const readers = new Map<string, ActivityReader>();

function readerFor(client: PgClient): ActivityReader | null {
  const params = client.connectionParameters;
  if (params === undefined) return null;
  const key = `${String(params.host)}|${String(params.port)}|${String(params.database)}|${String(params.user)}`;
  let reader = readers.get(key);
  if (reader === undefined) {
    const Client = privateClientClass(client.constructor);
    // The password is handed to our own client only; it is never stored anywhere else.
    const password = typeof client.password === 'string' ? client.password : params.password;
    reader = new ActivityReader(Client, {
      host: params.host,
      port: params.port,
      database: params.database,
      user: params.user,
      password,
      ssl: params.ssl,
    });
    readers.set(key, reader);
  }
  return reader;
}

/** Ends every reader connection (tests, `stop()`); they are made again when needed. */
export function closeActivityReaders(): void {
  for (const reader of readers.values()) reader.close();
  readers.clear();
}

/** How the ledger asks PostgreSQL about a pg client: its backend pid, then pg_stat_activity. */
export const pgConnectionProbe: ConnectionProbe = {
  serverIdentity(target) {
    const pid = (target as PgClient).processID;
    return typeof pid === 'number' ? { pid } : null;
  },
  confirm(target) {
    try {
      const client = target as PgClient;
      const pid = client.processID;
      if (typeof pid !== 'number') return Promise.resolve(null);
      return readerFor(client)?.lookup(pid) ?? Promise.resolve(null);
    } catch (error) {
      logFailure('confirming a pg connection', error);
      return Promise.resolve(null);
    }
  },
};
