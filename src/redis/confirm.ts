import net from 'node:net';
import type tls from 'node:tls';
import { logFailure } from '../core/guard.js';
import type { ConnectionProbe, ServerState } from '../core/records.js';
import { outsideAnyContext } from '../core/runtime.js';
import { shared } from '../core/state.js';
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

/** Bounds every command of a lookup connection; its name on the server is `leakwatch`. */
export const LOOKUP_TIMEOUT_MS = 5_000;
export const LOOKUP_NAME = 'leakwatch';

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

/** The lookups of the process: one connection of leakwatch's own per server and login, shared by ioredis and node-redis. */
const lookups = shared('redisClientListLookups', () => new Map<string, ClientListLookup>());

/**
 * What the server at `endpoint` says of the connection whose local address is `address:port`,
 * from `CLIENT LIST`; null when it cannot tell. Never rejects.
 */
export function confirmByClientList(endpoint: RespEndpoint, address: string, port: number): Promise<ServerState | null> {
  // The key names the server and the user, never the password.
  const key = [endpoint.host, endpoint.port, endpoint.username ?? '', endpoint.tls ? 'tls' : ''].join('|');
  let lookup = lookups.get(key);
  if (lookup === undefined) lookups.set(key, (lookup = new ClientListLookup(endpoint)));
  return lookup.find(address, port).then(
    (entry) => (entry === null ? null : serverStateOf(entry)),
    () => null,
  );
}

/** Closes every lookup connection (an undo, tests); they are made again when needed. */
export function closeClientListLookups(): void {
  for (const lookup of lookups.values()) lookup.close();
  lookups.clear();
}

/** The endpoint of an ioredis client's server: the address its socket is connected to (after DNS, a Sentinel's answer), logged in as it logs in. */
function ioredisEndpoint(remoteAddress: string, remotePort: number, options: Record<string, unknown>): RespEndpoint {
  return {
    host: remoteAddress,
    port: remotePort,
    tls: options.tls !== null && typeof options.tls === 'object' ? (options.tls as tls.ConnectionOptions) : null,
    servername: typeof options.host === 'string' && net.isIP(options.host) === 0 ? options.host : undefined,
    username: typeof options.username === 'string' && options.username !== '' ? options.username : undefined,
    // Handed to the lookup connection only; never kept anywhere else.
    password: typeof options.password === 'string' ? options.password : undefined,
    clientName: LOOKUP_NAME,
    timeoutMs: LOOKUP_TIMEOUT_MS,
  };
}

/** How the ledger asks Redis about an ioredis client. */
export const ioredisConnectionProbe: ConnectionProbe = {
  confirm(target) {
    try {
      const client = target as RedisLike;
      const socket = client.stream;
      const options = client.options;
      if (socket === undefined || options.path) return Promise.resolve(null);
      const { localAddress, localPort, remoteAddress, remotePort } = socket;
      if (!localAddress || !localPort || !remoteAddress || !remotePort) return Promise.resolve(null);
      return confirmByClientList(ioredisEndpoint(remoteAddress, remotePort, options), localAddress, localPort);
    } catch (error) {
      logFailure('redis confirmation', error);
      return Promise.resolve(null);
    }
  },
};
