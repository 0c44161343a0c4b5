import type { EventEmitter } from 'node:events';
import type { Fn } from '../core/patch.js';

/**
 * The parts of node-postgres that leakwatch touches. `pg` is a peer dependency, so these shapes are
 * declared here rather than imported: the app may bring any pg 8.x.
 */


/** pg's `Connection`: one socket speaking the wire protocol. */
export interface PgConnection extends EventEmitter {
  query?(text: string): void;
  sync?(): void;
  describe?(message: unknown): void;
  execute?(message: unknown): void;
  stream?: { unref?(): void } | null;
}

export interface PgConnectionParameters {
  host?: string;
  port?: number | string;
  database?: string;
  user?: string;
  password?: unknown;
  ssl?: unknown;
}

export interface PgClient extends EventEmitter {
  connection?: PgConnection;
  connectionParameters?: PgConnectionParameters;
  password?: unknown;
  processID?: number | null;
  readyForQuery?: boolean;
  _activeQuery?: unknown;
  _txStatus?: string | null;
  _connecting?: boolean;
  _connected?: boolean;
  connect(callback?: (error?: Error) => void): Promise<unknown> | void;
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(callback?: () => void): Promise<void> | void;
  unref?(): void;
}

export type PgClientClass = new (config?: object) => PgClient;

/** pg-pool's `Pool`. */
export interface PgPool extends EventEmitter {
  options: Record<string, unknown> & { max?: number };
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  ending?: boolean;
  ended?: boolean;
  connect(callback?: Fn): unknown;
  query(...args: unknown[]): unknown;
}

export interface PgModule {
  Client: PgClientClass;
  Pool: { prototype: object };
  defaults?: Record<string, unknown>;
}

