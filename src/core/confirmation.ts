import type { LedgerObserver } from './ledger.js';
import type { ConnectionRecord } from './records.js';

/**
 * Confirms leaked connections with their server: when a connection leaks, the probe its
 * instrumentation gave (pg_stat_activity, CLIENT LIST) is asked about it, and the answer is
 * attached to the record for reports. The identity known without asking (a backend pid) is
 * attached at once. Probes never reject; a failure is handed to `onFailure`.
 */
export function serverConfirmation(onFailure: (what: string, error: unknown) => void): LedgerObserver {
  return {
    connectionLeaked(connection: ConnectionRecord): void {
      const { probe, target } = connection;
      if (probe === null || target === null) return;
      const identity = probe.serverIdentity?.(target);
      if (identity) connection.server = { ...identity, state: null, stateAgeMs: null };
      connection.confirmation =
        probe.confirm?.(target).then(
          (server) => {
            if (server === null) return;
            connection.server = server;
            connection.history?.add(Date.now(), 'confirmed');
          },
          (error: unknown) => onFailure(`confirming ${connection.id} with its server`, error),
        ) ?? null;
    },
  };
}
