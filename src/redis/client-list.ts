import type { ServerState } from '../core/records.js';

/**
 * Reading `CLIENT LIST`: one line per connection, `key=value` fields separated by spaces.
 *
 * Only the fields leakwatch reports are kept. `cmd` is a command name (`blpop`, `client|list`),
 * never its arguments; the client `name` and `user` are not kept.
 */
export interface ClientListEntry {
  id: number;
  /** The client's address as the server sees it: `127.0.0.1:50122`, `[::1]:50122`. */
  addr: string;
  /** Seconds since the connection was made. */
  age: number;
  /** Seconds since its last command. */
  idle: number;
  /** `N` none, `P` subscriber, `b` blocked, `x` in MULTI, `O` monitor … */
  flags: string;
  cmd: string;
}

export function parseClientList(text: string): ClientListEntry[] {
  const entries: ClientListEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const entry: ClientListEntry = { id: -1, addr: '', age: 0, idle: 0, flags: '', cmd: '' };
    for (const field of line.trim().split(' ')) {
      const eq = field.indexOf('=');
      if (eq <= 0) continue;
      const value = field.slice(eq + 1);
      switch (field.slice(0, eq)) {
        case 'id':
          entry.id = Number(value);
          break;
        case 'addr':
          entry.addr = value;
          break;
        case 'age':
          entry.age = Number(value);
          break;
        case 'idle':
          entry.idle = Number(value);
          break;
        case 'flags':
          entry.flags = value;
          break;
        case 'cmd':
          entry.cmd = value;
          break;
      }
    }
    if (entry.id >= 0 && entry.addr !== '') entries.push(entry);
  }
  return entries;
}

/** `host` without IPv6 brackets or the IPv4-mapped prefix, so both sides compare alike. */
function normalizeHost(host: string): string {
  let h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase().startsWith('::ffff:') && h.includes('.')) h = h.slice(7);
  return h.toLowerCase();
}

/** Splits `127.0.0.1:6379` or `[::1]:6379` at its last colon; null if there is no port. */
export function splitAddress(addr: string): { host: string; port: number } | null {
  const colon = addr.lastIndexOf(':');
  if (colon <= 0) return null;
  const port = Number(addr.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0) return null;
  return { host: normalizeHost(addr.slice(0, colon)), port };
}

/** The entry whose `addr` is this client socket's local address and port; null when none is. */
export function findByAddress(entries: ClientListEntry[], localAddress: string, localPort: number): ClientListEntry | null {
  const host = normalizeHost(localAddress);
  for (const entry of entries) {
    const addr = splitAddress(entry.addr);
    if (addr !== null && addr.port === localPort && addr.host === host) return entry;
  }
  return null;
}

/** What the connection is doing according to the server, from its flags. */
export function serverStateName(flags: string): string {
  if (flags.includes('P')) return 'subscriber';
  if (flags.includes('b')) return 'blocked';
  if (flags.includes('x')) return 'in-multi';
  if (flags.includes('O')) return 'monitor';
  return 'idle';
}

/** The ServerState leakwatch attaches to a confirmed Redis connection. `idle` and `age` are seconds, as Redis gives them. */
export function serverStateOf(entry: ClientListEntry): ServerState {
  return {
    clientId: entry.id,
    state: serverStateName(entry.flags),
    stateAgeMs: entry.idle * 1000,
    idle: entry.idle,
    age: entry.age,
    flags: entry.flags,
    cmd: entry.cmd,
  };
}
