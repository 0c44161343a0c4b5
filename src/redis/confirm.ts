import net from 'node:net';
import type tls from 'node:tls';
import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ServerState } from '../core/records.js';
import { outsideAnyContext } from '../core/runtime.js';
import { findByAddress, parseClientList, serverStateOf, type ClientListEntry } from './client-list.js';
import type { RedisLike } from './internal-types.js';
import { RespConnection, type RespEndpoint } from './resp-connection.js';

/**
 * Confirms a suspected leak with the server: finds the connection in `CLIENT LIST` and attaches
 * what the server says about it (`idle`, `age`, `flags`, `cmd`).
 *
 * The lookup runs on a connection of leakwatch's own to the server the app's socket is connected
 * to, made on first use and logged in as the app's client logs in. It is a plain socket
 * (resp-connection.ts), not the app's Redis class, so no agent or patcher on that class sees it,
 * and it runs outside any request's async context. The app's client names are left alone.
 *
 * The join is by the app socket's local address and port, read only when a leak is confirmed: it
 * costs nothing per connection, where reading each connection's `CLIENT ID` at connect would cost
 * a round trip on every connection the app makes (bench/redis.bench.mjs measures both). It cannot join through NAT or a proxy, nor over
 * a Unix socket (every client there has the same address): confirmation then resolves null.
 * Leaks found close together share one `CLIENT LIST`.
 */

interface Waiter {
  address: string;
  port: number;
  resolve(entry: ClientListEntry | null): void;
}

const LOOKUP_TIMEOUT_MS = 5_000;

class ClientListLookup {
  private readonly connection: RespConnection;
  private waiting: Waiter[] = [];
  private flushing = false;

  constructor(endpoint: RespEndpoint) {
    this.connection = new RespConnection(endpoint);
  }

  find(address: string, port: number): Promise<ClientListEntry | null> {
    return new Promise((resolve) => {
      this.waiting.push({ address, port, resolve });
      if (!this.flushing) {
        this.flushing = true;
        outsideAnyContext(() => setImmediate(() => void this.flush()));
      }
    });
  }

  close(): void {
    this.connection.close();
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    let entries: ClientListEntry[] | null = null;
    try {
      entries = parseClientList(String(await this.connection.command('CLIENT', 'LIST')));
    } catch (error) {
      logFailure('CLIENT LIST', error);
    }
    for (const waiter of batch) waiter.resolve(entries === null ? null : findByAddress(entries, waiter.address, waiter.port));
    if (this.waiting.length > 0) setImmediate(() => void this.flush());
    else this.flushing = false;
  }
}

/** One lookup connection per server an app client talks to. */
export class ClientListConfirmation {
  private readonly lookups = new Map<string, ClientListLookup>();

  /** The ConnectionProbe the ledger calls for a suspected leak. */
  readonly probe: ConnectionProbe = {
    confirm: (target) => this.confirm(target as RedisLike),
  };

  confirm(client: RedisLike): Promise<ServerState | null> {
    try {
      const socket = client.stream;
      const options = client.options;
      if (socket === undefined || options.path) return Promise.resolve(null);
      const { localAddress, localPort, remoteAddress, remotePort } = socket;
      if (!localAddress || !localPort || !remoteAddress || !remotePort) return Promise.resolve(null);
      return this.lookupFor(remoteAddress, remotePort, options)
        .find(localAddress, localPort)
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

  /** The server the app's socket is connected to (after DNS, a Sentinel's answer), as the app's client logs in. */
  private lookupFor(host: string, port: number, options: Record<string, unknown>): ClientListLookup {
    const username = typeof options.username === 'string' && options.username !== '' ? options.username : undefined;
    const tlsOptions = options.tls !== null && typeof options.tls === 'object' ? (options.tls as tls.ConnectionOptions) : null;
    const key = [host, port, username, tlsOptions === null ? '' : 'tls'].join('|');
    let lookup = this.lookups.get(key);
    if (lookup === undefined) {
      lookup = new ClientListLookup({
        host,
        port,
        tls: tlsOptions,
        servername: typeof options.host === 'string' && net.isIP(options.host) === 0 ? options.host : undefined,
        username,
        // Handed to the lookup connection only; never kept anywhere else.
        password: typeof options.password === 'string' ? options.password : undefined,
        clientName: 'leakwatch',
        timeoutMs: LOOKUP_TIMEOUT_MS,
      });
      this.lookups.set(key, lookup);
    }
    return lookup;
  }
}
