import { AsyncLocalStorage } from 'node:async_hooks';
import { resolveConfig, type Config, type LeakwatchOptions } from '../config.js';
import { Ledger } from './ledger.js';
import type { ResponseRecord } from './records.js';

/**
 * The process-wide state: one ledger, one async context, one configuration.
 *
 * It lives on globalThis under a registered Symbol so that two copies of leakwatch in one process
 * (the app's and a test runner's, or `src/` and `dist/`) share it instead of splitting the ledger.
 */
export interface Runtime {
  readonly config: Config;
  readonly ledger: Ledger;
  readonly context: AsyncLocalStorage<ResponseRecord>;
}

const RUNTIME = Symbol.for('leakwatch.runtime.v1');
const CONTEXT = Symbol.for('leakwatch.context.v1');

type Holder = { [RUNTIME]?: Runtime; [CONTEXT]?: AsyncLocalStorage<ResponseRecord> };
const holder = globalThis as unknown as Holder;

/** The async context that carries the current response through a request's continuations. */
export const responseContext: AsyncLocalStorage<ResponseRecord> = (holder[CONTEXT] ??= new AsyncLocalStorage());

export function currentResponse(): ResponseRecord | undefined {
  return responseContext.getStore();
}

export function getRuntime(): Runtime | undefined {
  return holder[RUNTIME];
}

/**
 * Returns the runtime, creating it from `options` (and `LEAKWATCH_*`) on first use. Throws a
 * ConfigError for bad options. Options passed once a runtime exists are ignored unless `replace`.
 */
export function ensureRuntime(options?: LeakwatchOptions, replace = false): Runtime {
  const existing = holder[RUNTIME];
  if (existing !== undefined && !replace) return existing;
  const config = resolveConfig(options);
  existing?.ledger.stop();
  const ledger = new Ledger({ ...config, currentResponse });
  const runtime: Runtime = { config, ledger, context: responseContext };
  holder[RUNTIME] = runtime;
  return runtime;
}

/** Forgets the runtime (its timer stops); for tests and `stop()`. */
export function resetRuntime(): void {
  holder[RUNTIME]?.ledger.stop();
  delete holder[RUNTIME];
}
