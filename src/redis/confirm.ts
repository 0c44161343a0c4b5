import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ServerState } from '../core/records.js';
import { findByAddress, parseClientList, serverStateOf, type ClientListEntry } from './client-list.js';
import type { RedisClass, RedisLike } from './internal-types.js';

/**
 * Confirms a suspected leak with the server: finds the connection in `CLIENT LIST` and attaches
 * what the server says about it (`idle`, `age`, `flags`, `cmd`).
 *
 * The lookup runs on a connection of leakwatch's own, made on first use per server and never one
 * of the app's, and the app's client names are left alone. The join is by the app socket's local
 * address and port, read only when a leak is confirmed: it costs nothing per connection, where
 * reading each connection's `CLIENT ID` at connect would cost a round trip on every connection the
 * app makes (bench/redis.bench.mjs measures both). It cannot join through NAT or a proxy, nor over
 * a Unix socket (every client there has the same address): confirmation then resolves null.
 * Leaks found close together share one `CLIENT LIST`.
 */

interface Waiter {
  address: string;
  port: number;
  resolve(entry: ClientListEntry | null): void;
}

/** Options of the lookup connection over the app client's own: no retries, no name of the app's, no user scripts. */
const LOOKUP_OPTIONS = {
  lazyConnect: true,
  connectionName: 'leakwatch',
  enableOfflineQueue: true,
  enableAutoPipelining: false,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  retryStrategy: null,
  reconnectOnError: null,
  readOnly: false,
  monitor: false,
  scripts: undefined,
  himportFieldsets: undefined,
  commandTimeout: 5000,
};

class ClientListLookup {
  private connection: RedisLike | null = null;
  private waiting: Waiter[] = [];
  private flushing = false;

  constructor(
    private readonly Redis: RedisClass,
    private readonly options: Record<string, unknown>,
    private readonly untracked: <T>(make: () => T) => T,
  ) {}

  find(address: string, port: number): Promise<ClientListEntry | null> {
    return new Promise((resolve) => {
      this.waiting.push({ address, port, resolve });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  close(): void {
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) connection.disconnect();
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    let entries: ClientListEntry[] | null = null;
    try {
      entries = parseClientList(String(await this.open().call('CLIENT', 'LIST')));
    } catch (error) {
      logFailure('CLIENT LIST', error);
    }
    for (const waiter of batch) waiter.resolve(entries === null ? null : findByAddress(entries, waiter.address, waiter.port));
    if (this.waiting.length > 0) setImmediate(() => void this.flush());
    else this.flushing = false;
  }

  private open(): RedisLike {
    const existing = this.connection;
    if (existing !== null && existing.status !== 'end') return existing;
    const connection = this.untracked(() => new this.Redis({ ...this.options, ...LOOKUP_OPTIONS }));
    connection.on('error', () => {}); // a failure reaches the CLIENT LIST call, which logs it
    connection.on('connect', () => connection.stream?.unref());
    this.connection = connection;
    return connection;
  }
}

/** One lookup connection per server an app client talks to. */
export class ClientListConfirmation {
  private readonly lookups = new Map<string, ClientListLookup>();

  constructor(
    private readonly Redis: RedisClass,
    private readonly untracked: <T>(make: () => T) => T,
  ) {}

  /** The ConnectionProbe the ledger calls for a suspected leak. */
  readonly probe: ConnectionProbe = {
    confirm: (target) => this.confirm(target as RedisLike),
  };

  confirm(client: RedisLike): Promise<ServerState | null> {
    try {
      const socket = client.stream;
      const options = client.options;
      if (socket === undefined || options.path) return Promise.resolve(null);
      const address = socket.localAddress;
      const port = socket.localPort;
      if (!address || !port) return Promise.resolve(null);
      return this.lookupFor(options)
        .find(address, port)
        .then(
          (entry) => (entry === null ? null : serverStateOf(entry)),
          () => null,
        );
    } catch (error) {
      logFailure('redis confirmation', error);
      return Promise.resolve(null);
    }
  }

  close(): void {
    for (const lookup of this.lookups.values()) lookup.close();
    this.lookups.clear();
  }

  private lookupFor(options: Record<string, unknown>): ClientListLookup {
    const key = [options.host, options.port, options.username, options.tls ? 'tls' : '', options.name].join('|');
    let lookup = this.lookups.get(key);
    if (lookup === undefined) {
      lookup = new ClientListLookup(this.Redis, options, this.untracked);
      this.lookups.set(key, lookup);
    }
    return lookup;
  }
}
