import type { Ledger } from '../core/ledger.js';
import type { ConnectionProbe, ConnectionRecord, IdleState, ResponseRecord, StackCapture } from '../core/records.js';
import { REDIS_COMMAND } from '../core/marks.js';
import { getRuntime } from '../core/runtime.js';
import type { CommandQueueLike, RedisLike } from './internal-types.js';

/**
 * One ioredis client followed through its statuses.
 *
 * A client holds a server connection from its first `connecting` to `end`, and that span is one
 * ConnectionRecord: automatic reconnects (`close` → `reconnecting` → `connecting` → `ready`) keep
 * the record, so a killed connection leaves no phantom behind. A lazyConnect client that never
 * connects holds nothing and is never recorded. The owner is the response of the async context of
 * `new Redis()` / `duplicate()`, even when the first connect happens later in another context.
 */
export class TrackedClient {
  /** The record of the server connection held now; null before the first connect and after `end`. */
  connection: ConnectionRecord | null = null;
  /** The ledger that holds `connection` (the runtime may be replaced while it is held). */
  ledger: Ledger | null = null;
  /** A connect attempt is in flight: the client waits on the server. */
  private connecting = false;

  constructor(
    readonly client: RedisLike,
    readonly owner: ResponseRecord | undefined,
    readonly stack: StackCapture | null,
    private readonly probe: ConnectionProbe,
    /** Clients holding a connection now, so undo can let go of them. */
    private readonly live: Set<TrackedClient>,
  ) {}

  /** ioredis changed the client's status (`Redis#setStatus`). */
  statusChanged(status: string): void {
    const connection = this.connection;
    switch (status) {
      case 'connecting':
        if (connection === null) {
          this.connecting = true;
          this.acquire(true);
        } else if (!this.connecting) {
          this.connecting = true;
          this.ledger?.connectionBusy(connection);
        }
        break;
      case 'ready':
        this.connectAttemptOver();
        // Without autoResendUnfulfilledCommands ioredis drops these without settling them.
        if (this.client.options.autoResendUnfulfilledCommands === false) abandonQueued(this.client.prevCommandQueue);
        break;
      case 'close':
        this.connectAttemptOver();
        break;
      case 'end':
        this.release();
        // Commands written before a close that never reconnected are never settled by ioredis.
        abandonQueued(this.client.prevCommandQueue);
        break;
    }
  }

  /** The app let go of the client (`quit`, `disconnect()`), or it ended. */
  release(): void {
    const connection = this.connection;
    if (connection === null) return;
    this.connection = null;
    this.connecting = false;
    this.live.delete(this);
    this.ledger?.releaseConnection(connection);
  }

  /** What kind of idle the connection is in after a reply: subscriber while subscribed to anything. */
  idleState(connection: ConnectionRecord): IdleState | undefined {
    if (this.client.condition?.subscriber) return 'subscriber';
    return connection.idleState === 'subscriber' ? 'idle' : undefined;
  }

  /** Records a client found already connected (made before instrumentation); it has no known owner. */
  adoptConnected(): void {
    const status = this.client.status;
    if (status === 'wait' || status === 'end' || this.connection !== null) return;
    this.connecting = status === 'connecting' || status === 'connect';
    const connection = this.acquire(this.connecting);
    if (connection !== null && this.client.condition?.subscriber) connection.idleState = 'subscriber';
  }

  private connectAttemptOver(): void {
    const connection = this.connection;
    if (connection === null || !this.connecting) return;
    this.connecting = false;
    this.ledger?.connectionIdle(connection, this.idleState(connection) ?? 'idle');
  }

  /** Records the server connection as held; null when leakwatch has no runtime (not started). */
  private acquire(busy: boolean): ConnectionRecord | null {
    const ledger = getRuntime()?.ledger;
    if (ledger === undefined) return null;
    const client = this.client;
    const init = { kind: 'redis' as const, pool: poolName(client.options), pooled: false, target: client, probe: this.probe, stack: this.stack, busy };
    // The creator's response, even when connecting later in another context.
    const connection = ledger.acquireConnection(init, this.owner ?? null);
    this.connection = connection;
    this.ledger = ledger;
    this.live.add(this);
    return connection;
  }
}

/** `host:port/db` or `socket-path/db`; never a password. */
export function poolName(options: Record<string, unknown>): string {
  const db = typeof options.db === 'number' ? options.db : 0;
  if (typeof options.path === 'string' && options.path !== '') return `${options.path}/${db}`;
  if (Array.isArray(options.sentinels) && typeof options.name === 'string') return `sentinel:${options.name}/${db}`;
  return `${String(options.host ?? 'localhost')}:${String(options.port ?? 6379)}/${db}`;
}

type Settleable = { [key: symbol]: { abandon(): void } | undefined };

export const kPending = REDIS_COMMAND;

function abandonQueued(queue: CommandQueueLike | null | undefined): void {
  if (queue === null || queue === undefined) return;
  for (let i = 0; i < queue.length; i++) {
    const command = queue.peekAt(i)?.command as unknown as Settleable | undefined;
    command?.[kPending]?.abandon();
  }
}
