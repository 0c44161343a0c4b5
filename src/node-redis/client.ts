import type { Socket } from 'node:net';
import type { Ledger } from '../core/ledger.js';
import type { ConnectionProbe, ConnectionRecord, IdleState, ResponseRecord, StackCapture } from '../core/records.js';
import { getRuntime } from '../core/runtime.js';
import type { CommandConnection } from '../redis/commands.js';
import { poolName } from '../redis/connection.js';
import type { ClientLike } from './internal-types.js';
import type { SocketTaker } from './state.js';

/** What the clients of one instrumented copy of @redis/client share. */
export interface CopyContext {
  readonly probe: ConnectionProbe;
  /** Clients holding a record now, so the undo can let go of them. */
  readonly live: Set<TrackedClient>;
  /** The queue's own `isPubSubActive` getter, read without the capture around it. */
  isPubSubActive(queue: object): boolean;
}

/**
 * One node-redis client followed from `connect()` to its end.
 *
 * A client made by the app (`createClient()`, `duplicate()`) holds one ConnectionRecord from its
 * `connect()` to its end (`quit()`, `close()`, `destroy()`, `disconnect()`, the reconnect strategy
 * giving up): reconnects keep the record, and a client that never connects holds nothing. The
 * owner is the response of the async context where the client was made, even when it connects
 * later in another one.
 *
 * A pool's member (v4's isolation pool, a v5/v6 `createClientPool()`) is held by nobody while it
 * waits in its pool: it has a record only while leased, owned by the caller of the lease.
 */
export class TrackedClient implements CommandConnection, SocketTaker {
  connection: ConnectionRecord | null = null;
  ledger: Ledger | null = null;
  /** The socket of the current connection, from `net.client.socket`; read only to confirm a leak. */
  socket: Socket | null = null;
  /** The client's command queue, once known; pub/sub state is read from it. */
  queue: object | null = null;
  /** A (p|s)subscribe went through: after each reply, whether it still is a subscriber is read. */
  subscribed = false;
  /** A connect or reconnect is in flight: the client waits on the server. */
  private connecting = false;

  constructor(
    /** The client object the app holds (for v5/v6 a stand-in whose prototype is the client). */
    readonly handle: ClientLike,
    readonly owner: ResponseRecord | undefined,
    readonly stack: StackCapture | null,
    readonly pooled: boolean,
    private readonly copy: CopyContext,
  ) {}

  /** `connect()` was called on a client that is not open. */
  connectCalled(): void {
    this.connecting = true;
    if (!this.pooled && this.connection === null) this.acquire(this.owner, this.stack, false, true);
  }

  /** The client emitted `event` (after the app's own listeners ran). */
  emitted(event: string): void {
    switch (event) {
      case 'ready':
        this.connectOver();
        break;
      case 'reconnecting':
        if (this.connection !== null && !this.connecting) {
          this.connecting = true;
          this.ledger?.connectionBusy(this.connection);
        }
        break;
      case 'end':
      case 'terminated':
        this.release();
        this.connecting = false;
        break;
      case 'error':
        // The reconnect strategy gave up (the client is closed for good), or the first connect failed for good.
        if (!this.handle.isOpen) {
          this.release();
          this.connecting = false;
        }
        break;
    }
  }

  /** A pool hands this member to a caller: recorded, owned by the caller, until it is handed back. */
  lease(owner: ResponseRecord | undefined, stack: StackCapture | null): void {
    this.release();
    this.acquire(owner, stack, true, false);
  }

  /** The app let go of the client (`quit()` …), or the pool got its member back, or the connection ended. */
  release(): void {
    const connection = this.connection;
    if (connection === null) return;
    this.connection = null;
    this.copy.live.delete(this);
    this.ledger?.releaseConnection(connection);
  }

  /** What kind of idle the connection is in after a reply: subscriber while subscribed to anything. */
  idleState(connection: ConnectionRecord): IdleState | undefined {
    if (this.subscribed && this.queue !== null) {
      if (this.copy.isPubSubActive(this.queue)) return 'subscriber';
      this.subscribed = false;
    }
    return connection.idleState === 'subscriber' ? 'idle' : undefined;
  }

  private connectOver(): void {
    if (!this.connecting) return;
    this.connecting = false;
    const connection = this.connection;
    if (connection !== null) this.ledger?.connectionIdle(connection, this.idleState(connection) ?? 'idle');
  }

  /** Records the connection as held by `owner`; nothing when leakwatch has no runtime. */
  private acquire(owner: ResponseRecord | undefined, stack: StackCapture | null, pooled: boolean, busy: boolean): void {
    const ledger = getRuntime()?.ledger;
    if (ledger === undefined) return;
    const options = this.handle.options;
    const socket = options?.socket;
    const init = {
      kind: 'redis' as const,
      pool: poolName({ host: socket?.host, port: socket?.port, path: socket?.path, db: options?.database }),
      pooled,
      target: this.handle,
      probe: this.copy.probe,
      stack,
      busy,
    };
    const connection = ledger.acquireConnection(init, owner ?? null);
    this.connection = connection;
    this.ledger = ledger;
    this.copy.live.add(this);
  }
}
