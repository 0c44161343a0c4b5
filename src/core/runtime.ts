import { AsyncLocalStorage } from 'node:async_hooks';
import { resolveConfig, type Config, type LeakwatchOptions } from '../config.js';
import { serverConfirmation } from './confirmation.js';
import { logFailure, setFailureLog } from './guard.js';
import { Ledger } from './ledger.js';
import { PoolWaits } from './pool-waits.js';
import type { ResponseRecord } from './records.js';
import { whileModuleLoads } from './stack.js';
import { shared } from './state.js';

/**
 * The process's runtime: one configuration and one ledger, in the process-wide slot (state.ts).
 * Instrumentations read it when something happens (`getRuntime()`, a property read), never create
 * it on the hot path: it is made at start-up, by `start()` or by an explicit `instrument…()` call.
 */
export interface Runtime {
  readonly config: Config;
  readonly ledger: Ledger;
  /** Checkouts waiting for pool connections, and pools exhausted by them. */
  readonly waits: PoolWaits;
}

/** The async context that carries the current response through a request's continuations. */
export const responseContext: AsyncLocalStorage<ResponseRecord> = shared('context', () => new AsyncLocalStorage<ResponseRecord>());

/**
 * Runs a function in the async context leakwatch was loaded in, outside every request and every
 * other tool's context (an agent's active span): for leakwatch's own I/O, so that none of it is
 * charged to a response or recorded as part of the app's work by another tool.
 */
export const outsideAnyContext: <R>(fn: () => R) => R = AsyncLocalStorage.snapshot();

const slot = shared<{ runtime: Runtime | undefined }>('runtime', () => ({ runtime: undefined }));

/**
 * The store while a pool library makes a connection for itself (tarn's, sequelize-pool's,
 * generic-pool's `create`): work of no response, whichever request's checkout set it off. The
 * client connected there is the pool's, held by nobody until checked out.
 */
const POOL_WORK = shared('poolWork', () => Object.freeze({ poolWork: true }) as unknown as ResponseRecord);

export function currentResponse(): ResponseRecord | undefined {
  const store = responseContext.getStore();
  return store === POOL_WORK ? undefined : store;
}

/** Runs `fn`, and everything it sets off, as a pool's own work (see POOL_WORK). */
export function runAsPoolWork<T>(fn: () => T): T {
  return responseContext.run(POOL_WORK, fn);
}

/** We are inside a pool's own work: a client connected now belongs to the pool. */
export function isPoolWork(): boolean {
  return responseContext.getStore() === POOL_WORK;
}

/** Runs `fn` in `owner`'s async context, as leakwatch sees it (the app's own contexts are left alone). */
export function inContextOf<T>(owner: ResponseRecord | undefined, fn: () => T): T {
  if (currentResponse() === owner) return fn();
  return owner === undefined ? responseContext.exit(fn) : responseContext.run(owner, fn);
}

export function getRuntime(): Runtime | undefined {
  return slot.runtime;
}

function createRuntime(config: Config): Runtime {
  setFailureLog(config.log);
  const ledger = new Ledger({
    responseThresholdMs: config.responseThresholdMs,
    connectionThresholdMs: config.connectionThresholdMs,
    maxReportedLeaks: config.maxReportedLeaks,
    currentResponse,
    onFailure: logFailure,
    madeWhileModuleLoads: (connection) => whileModuleLoads(connection.stack),
  });
  ledger.observe(serverConfirmation(logFailure, () => ledger.now()));
  const waits = new PoolWaits({ exhaustionThresholdMs: config.exhaustionThresholdMs, onFailure: logFailure });
  return { config, ledger, waits };
}

/**
 * The runtime, made from `LEAKWATCH_*` (and `options`) if there is none yet. With options and a
 * runtime already there, the options are applied to it: its ledger and records stay. Throws a
 * ConfigError for a bad option; call it at start-up, never on the hot path.
 */
export function ensureRuntime(options?: LeakwatchOptions): Runtime {
  const existing = slot.runtime;
  if (existing === undefined) return (slot.runtime = createRuntime(resolveConfig(options)));
  if (options === undefined) return existing;
  const config = resolveConfig({ ...existing.config.options, ...options });
  existing.ledger.reconfigure(config);
  existing.waits.reconfigure(config.exhaustionThresholdMs);
  setFailureLog(config.log);
  const runtime: Runtime = { config, ledger: existing.ledger, waits: existing.waits };
  slot.runtime = runtime;
  return runtime;
}

/** Forgets the runtime (its timers stop); for tests. */
export function resetRuntime(): void {
  slot.runtime?.ledger.stop();
  slot.runtime?.waits.stop();
  slot.runtime = undefined;
}
