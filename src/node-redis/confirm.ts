import net, { type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { logFailure } from '../core/guard.js';
import type { ServerState } from '../core/records.js';
import { confirmByClientList, LOOKUP_NAME, LOOKUP_TIMEOUT_MS } from '../redis/confirm.js';
import type { RespEndpoint } from '../redis/resp-connection.js';
import type { ClientOptions } from './internal-types.js';

/**
 * Confirms a suspected node-redis leak with the server, as for ioredis (src/redis/confirm.ts, on
 * the same lookup connections): the connection is found in `CLIENT LIST` by its socket's local
 * address and port, read only now, when a leak is confirmed.
 */

/**
 * The server the app's socket is connected to (its remote address: after DNS, whatever the URL
 * said), as the app's client logs in; null for a Unix socket (every client there has the same
 * address, so no join is possible) or a socket not connected.
 */
export function endpointOf(options: ClientOptions | undefined, socket: Socket): RespEndpoint | null {
  const configured = options?.socket ?? {};
  if (typeof configured.path === 'string' && configured.path !== '') return null;
  const { remoteAddress, remotePort } = socket;
  if (!remoteAddress || !remotePort) return null;
  let tlsOptions: ConnectionOptions | null = null;
  let servername: string | undefined;
  if (configured.tls === true) {
    // The app's own TLS settings (ca, cert, servername …); node-redis's socket options are ignored by tls.connect.
    const { tls: _tls, host, port: _port, ...rest } = configured;
    tlsOptions = rest as ConnectionOptions;
    // The certificate names the host the app asked for, not the address it resolved to.
    if (typeof host === 'string' && net.isIP(host) === 0) servername = host;
  }
  return {
    host: remoteAddress,
    port: remotePort,
    tls: tlsOptions,
    servername,
    username: typeof options?.username === 'string' ? options.username : undefined,
    // Handed to the lookup connection only; never kept anywhere else.
    password: typeof options?.password === 'string' ? options.password : undefined,
    clientName: LOOKUP_NAME,
    timeoutMs: LOOKUP_TIMEOUT_MS,
  };
}

/** What the server says of the connection on `socket`, a client of the server in `options`; null when it cannot tell. */
export function confirmConnection(socket: Socket | null, options: ClientOptions | undefined): Promise<ServerState | null> {
  try {
    if (socket === null) return Promise.resolve(null);
    const endpoint = endpointOf(options, socket);
    if (endpoint === null) return Promise.resolve(null);
    const { localAddress, localPort } = socket;
    if (!localAddress || !localPort) return Promise.resolve(null);
    return confirmByClientList(endpoint, localAddress, localPort);
  } catch (error) {
    logFailure('node-redis confirmation', error);
    return Promise.resolve(null);
  }
}
