import { logFailure } from '../core/guard.js';
import type { Ledger } from '../core/ledger.js';
import { OPERATION_LINKS, type PendingOperation, type ConnectionRecord, type IdleState, type ResponseRecord } from '../core/records.js';
import { currentResponse } from '../core/runtime.js';
import { kPending, type TrackedClient } from './connection.js';
import type { CommandLike } from './internal-types.js';

/**
 * One command from `sendCommand` to its reply: the connection is busy meanwhile, blocking commands
 * (BLPOP, XREAD BLOCK …) included, for as long as they wait.
 *
 * The end is seen by wrapping the command's own `resolve`/`reject`, which every path of ioredis
 * goes through (reply, error, timeout, flush on close). Attaching to `command.promise` instead
 * would mark the app's promise as handled and hide its unhandled rejections.
 *
 * A command sent on a connection the current response does not own (a shared client) is also an
 * operation of that response: it keeps the response from counting as stalled, and a leaked
 * response lists it in `operations`.
 */

/**
 * What a command needs of the client it runs on (an ioredis TrackedClient, a node-redis one): the
 * record of the connection held now, the ledger holding it, the kind of idle after a reply, and
 * how to let go of it (a QUIT).
 */
export interface CommandConnection {
  readonly connection: ConnectionRecord | null;
  readonly ledger: Ledger | null;
  idleState(connection: ConnectionRecord): IdleState | undefined;
  release(): void;
}

const NEW = 0;
const STARTED = 1;
const SETTLED = 2;

/**
 * A command in flight. As a PendingOperation it shows only the connection, the command name and
 * when it started; what it needs to settle is kept in #private fields, out of any serialization.
 */
export class PendingCommand implements PendingOperation {
  [OPERATION_LINKS.list]: unknown = null;
  [OPERATION_LINKS.prev]: unknown = null;
  [OPERATION_LINKS.next]: unknown = null;
  /** Set when the command starts waiting; only started commands are listed as operations. */
  connection!: ConnectionRecord;
  startedAt = 0;
  readonly command: string;
  #phase = NEW;
  #ledger: Ledger | null = null;
  readonly #tracked: CommandConnection;
  readonly #caller: ResponseRecord | undefined;
  /** The response this is an operation of, when it does not own the connection. */
  #operationOf: ResponseRecord | null = null;

  constructor(tracked: CommandConnection, command: string, caller: ResponseRecord | undefined) {
    this.#tracked = tracked;
    this.command = command;
    this.#caller = caller;
  }

  /** The command went through `sendCommand`; a connect it triggered has made the record by now. */
  start(): void {
    if (this.#phase !== NEW) return; // rejected at once (client ended, wrong mode): never waited
    const tracked = this.#tracked;
    const connection = tracked.connection;
    const ledger = tracked.ledger;
    if (connection === null || ledger === null) {
      this.#phase = SETTLED;
      return;
    }
    this.#phase = STARTED;
    this.connection = connection;
    this.#ledger = ledger;
    this.startedAt = ledger.now();
    ledger.connectionBusy(connection);
    const caller = this.#caller;
    if (caller !== undefined && caller !== connection.owner && caller.closedAt === 0) {
      this.#operationOf = caller;
      ledger.beginOperation(caller, this);
    }
    if (this.command === 'quit') tracked.release(); // the client will not reconnect after it
  }

  /** The reply, an error, a timeout or a flush reached the command. Only the first counts. */
  settle(): void {
    if (this.#phase !== STARTED) {
      this.#phase = SETTLED;
      return;
    }
    this.#phase = SETTLED;
    const connection = this.connection;
    const ledger = this.#ledger!;
    ledger.connectionIdle(connection, this.#tracked.idleState(connection));
    if (this.#operationOf !== null) ledger.endOperation(this.#operationOf, this);
  }

  /** ioredis dropped the command without settling it. */
  abandon(): void {
    this.settle();
  }
}

type MarkedCommand = CommandLike & { [kPending]?: PendingCommand };

/**
 * Prepares `command` before ioredis sees it; null when it is already followed (an offline-queue
 * flush or a resend after reconnect) or the client is not followed. Call `start()` after.
 */
export function followCommand(tracked: TrackedClient, command: CommandLike): PendingCommand | null {
  const target = command as MarkedCommand;
  const existing = target[kPending];
  if (existing !== undefined) return null; // resent from the offline queue or after a reconnect
  const pending = new PendingCommand(tracked, command.name, currentResponse());
  target[kPending] = pending;
  const resolve = command.resolve;
  const reject = command.reject;
  command.resolve = function (this: unknown, value: unknown) {
    try {
      pending.settle();
    } catch (error) {
      logFailure('redis reply', error);
    }
    return resolve.call(this, value);
  };
  command.reject = function (this: unknown, error: unknown) {
    try {
      pending.settle();
    } catch (failure) {
      logFailure('redis error reply', failure);
    }
    return reject.call(this, error);
  };
  return pending;
}
