import net, { type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { logFailure } from '../core/guard.js';
import type { ServerState } from '../core/records.js';
import { shared } from '../core/state.js';
import { findByAddress, parseClientList, serverStateOf, type ClientListEntry } from '../redis/client-list.js';
import { readClientList, type RedisEndpoint } from './client-list-reader.js';
import type { ClientOptions } from './internal-types.js';

/**
 * Confirms a suspected node-redis leak with the server: the connection is found in `CLIENT LIST`
 * by its socket's local address and port (read only now, when a leak is confirmed), and what the
 * server says of it (`idle`, `age`, `flags`, `cmd`) is attached to the record. `CLIENT LIST` is
 * read on a connection of leakwatch's own (client-list-reader.ts), never one of the app's, and
 * leaks found close together share one read per server.
 *
 * Nothing here is particular to node-redis but `endpointOf`: {@link ClientListJoin} takes any
 * reader of `CLIENT LIST`, so the ioredis confirmation can move onto it (and the two onto one
 * reader) without a change of behaviour.
 */

/**
 * The server the app's socket is connected to (its remote address: after DNS, whatever the URL
 * said), as the app's client logs in; null for a Unix socket (every client there has the same
 * address, so no join is possible) or a socket not connected.
 */
export function endpointOf(options: ClientOptions | undefined, socket: Socket): RedisEndpoint | null {
  const configured = options?.socket ?? {};
  if (typeof configured.path === 'string' && configured.path !== '') return null;
  const { remoteAddress, remotePort } = socket;
  if (!remoteAddress || !remotePort) return null;
  let tlsOptions: ConnectionOptions | null = null;
  if (configured.tls === true) {
    // The app's own TLS settings (ca, cert, servername …); node-redis's socket options are ignored by tls.connect.
    const { tls: _tls, host, port: _port, ...rest } = configured;
    tlsOptions = rest as ConnectionOptions;
    // The certificate names the host the app asked for, not the address it resolved to.
    if (tlsOptions.servername === undefined && typeof host === 'string' && net.isIP(host) === 0) tlsOptions = { ...tlsOptions, servername: host };
  }
  const username = typeof options?.username === 'string' ? options.username : undefined;
  const password = typeof options?.password === 'string' ? options.password : undefined;
  return { host: remoteAddress, port: remotePort, tls: tlsOptions, username, password };
}

interface Waiter {
  address: string;
  port: number;
  resolve(entry: ClientListEntry | null): void;
}

/** Finds connections in `CLIENT LIST` by address, one read per server for every lookup asked in the same turn. */
export class ClientListJoin {
  private batches = new Map<string, { endpoint: RedisEndpoint; waiters: Waiter[] }>();
  private scheduled = false;

  constructor(private readonly read: (endpoint: RedisEndpoint) => Promise<string>) {}

  /** The entry of the connection whose local address is `address:port`; null when it cannot be found. Never rejects. */
  find(endpoint: RedisEndpoint, address: string, port: number): Promise<ClientListEntry | null> {
    return new Promise((resolve) => {
      // The key names the server and user, never the password.
      const key = `${endpoint.tls === null ? 'tcp' : 'tls'}:${endpoint.host}:${endpoint.port}:${endpoint.username ?? ''}`;
      let batch = this.batches.get(key);
      if (batch === undefined) this.batches.set(key, (batch = { endpoint, waiters: [] }));
      batch.waiters.push({ address, port, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batches = [...this.batches.values()];
    this.batches = new Map();
    this.scheduled = false;
    await Promise.all(
      batches.map(async ({ endpoint, waiters }) => {
        let entries: ClientListEntry[] | null = null;
        try {
          entries = parseClientList(await this.read(endpoint));
        } catch (error) {
          logFailure('CLIENT LIST', error);
        }
        for (const waiter of waiters) waiter.resolve(entries === null ? null : findByAddress(entries, waiter.address, waiter.port));
      }),
    );
  }
}

const join = shared('nodeRedisClientList', () => new ClientListJoin(readClientList));

/** What the server says of the connection on `socket`, a client of the server in `options`; null when it cannot tell. */
export function confirmConnection(socket: Socket | null, options: ClientOptions | undefined): Promise<ServerState | null> {
  try {
    if (socket === null) return Promise.resolve(null);
    const endpoint = endpointOf(options, socket);
    if (endpoint === null) return Promise.resolve(null);
    const { localAddress, localPort } = socket;
    if (!localAddress || !localPort) return Promise.resolve(null);
    return join.find(endpoint, localAddress, localPort).then((entry) => (entry === null ? null : serverStateOf(entry)));
  } catch (error) {
    logFailure('node-redis confirmation', error);
    return Promise.resolve(null);
  }
}
