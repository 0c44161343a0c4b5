import type { LedgerObserver } from './ledger.js';
import type { ConnectionRecord, ServerState } from './records.js';

/** What is still true of a server's view once the connection is gone: who it was, not its state. */
function identityOnly(server: ServerState | null): ServerState | null {
  if (server === null) return null;
  const identity: ServerState = { state: null, stateAgeMs: null };
  if (server.pid !== undefined) identity.pid = server.pid;
  if (server.clientId !== undefined) identity.clientId = server.clientId;
  return identity;
}

/**
 * Confirms leaked connections with their server: when a connection leaks, the probe its
 * instrumentation gave (pg_stat_activity, CLIENT LIST) is asked about it, and the answer is
 * attached to the record for reports. The identity known without asking (a backend pid) is
 * attached at once. A connection whose socket is gone is not asked about, and a view the server
 * gave before it went is dropped: it would describe a session that no longer exists. Probes never
 * reject; a failure is handed to `onFailure`.
 */
export function serverConfirmation(onFailure: (what: string, error: unknown) => void, now: () => number): LedgerObserver {
  return {
    connectionLeaked(connection: ConnectionRecord): void {
      const { probe, target } = connection;
      if (probe === null || target === null) return;
      const identity = probe.serverIdentity?.(target);
      if (identity) connection.server = { ...identity, state: null, stateAgeMs: null };
      if (connection.closed !== null) return;
      connection.confirmation =
        probe.confirm?.(target).then(
          (server) => {
            if (server === null || connection.closed !== null) return;
            connection.server = server;
            connection.history?.add(now(), 'confirmed');
          },
          (error: unknown) => onFailure(`confirming ${connection.id} with its server`, error),
        ) ?? null;
    },
    connectionClosed(connection: ConnectionRecord): void {
      connection.server = identityOnly(connection.server);
    },
  };
}
