import type { PgConnectionParameters } from './internal-types.js';

/**
 * Names for pools and bare clients: `host:port/database`, as node-postgres resolves them (config,
 * then connection string, then `PG*` environment, then pg's defaults). A user name or password is
 * never part of a name.
 */

interface Endpoint {
  host?: unknown;
  port?: unknown;
  database?: unknown;
  user?: unknown;
}

const PG_DEFAULTS = { host: 'localhost', port: 5432 };

/** host, port and database of a connection string; nothing else is read from it. */
export function endpointOfConnectionString(connectionString: string): Endpoint {
  try {
    const url = new URL(connectionString);
    const params = url.searchParams;
    const endpoint: Endpoint = {};
    const host = url.hostname !== '' ? decodeURIComponent(url.hostname) : params.get('host');
    if (host) endpoint.host = host;
    if (url.port !== '') endpoint.port = url.port;
    const database = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : params.get('db');
    if (database) endpoint.database = database;
    // Only to fall back on for the database name, as pg does; never shown.
    if (url.username !== '') endpoint.user = decodeURIComponent(url.username);
    return endpoint;
  } catch {
    return {};
  }
}

function pick(key: keyof Endpoint, config: Endpoint, env: NodeJS.ProcessEnv, defaults: Record<string, unknown>): unknown {
  const value = config[key];
  if (value !== undefined && value !== null && value !== '') return value;
  const fromEnv = env[`PG${key.toUpperCase()}`];
  if (fromEnv) return fromEnv;
  return defaults[key];
}

/** `host:port/database` for client or pool options, resolved the way pg resolves them. */
export function endpointName(
  options: Record<string, unknown> | undefined,
  defaults: Record<string, unknown> = PG_DEFAULTS,
  env: NodeJS.ProcessEnv = process.env,
): string {
  let config: Endpoint = options ?? {};
  if (typeof options?.connectionString === 'string') config = { ...config, ...endpointOfConnectionString(options.connectionString) };
  const merged = { ...PG_DEFAULTS, ...defaults };
  const host = pick('host', config, env, merged);
  const port = pick('port', config, env, merged);
  const user = pick('user', config, env, merged);
  const database = pick('database', config, env, merged) ?? user;
  return `${String(host ?? 'localhost')}:${String(port ?? 5432)}/${String(database ?? '')}`;
}

/** `host:port/database` of a client's resolved connection parameters. */
export function clientEndpointName(params: PgConnectionParameters | undefined): string {
  if (params === undefined) return 'unknown';
  return `${String(params.host ?? 'localhost')}:${String(params.port ?? 5432)}/${String(params.database ?? '')}`;
}
