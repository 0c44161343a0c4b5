import { instrumentClientClass } from './client.js';
import type { PgModule } from './internal-types.js';
import { applyAll, install, type Undo } from '../core/patch.js';
import { ensureRuntime } from '../core/runtime.js';
import { pgState } from './state.js';
import { instrumentPoolClass } from './pool.js';

function isPgModule(value: unknown): value is PgModule {
  const pg = value as PgModule | null;
  return pg !== null && typeof pg === 'object' && typeof pg.Client === 'function' && typeof pg.Pool === 'function';
}

/** Options of {@link instrumentPg}. */
export interface PgInstrumentationOptions {
  /**
   * Stack frames captured where a pool checkout or a bare client's `connect()` is made; 0 turns
   * capture off. Read once, at install.
   * @default the runtime's `acquireStackFrames` (10)
   */
  acquireStackFrames?: number;
}

/** Applies the options to every pg instrumentation of the process (there is one view of pg). */
export function configurePg(options: PgInstrumentationOptions = {}): void {
  pgState().stackFrames = options.acquireStackFrames ?? ensureRuntime().config.acquireStackFrames;
}

/**
 * Instruments one copy of `pg`: every `Pool` checkout and every `Client` of it, from now on.
 * Shared by every caller (installing twice is harmless); the last caller's undo restores pg's own
 * methods, keeping what other tools wrapped on top.
 * `leakwatch/register` and `start()` do it for each copy of pg the app loads.
 */
export function instrumentPg(pgModule: unknown, options: PgInstrumentationOptions = {}): Undo {
  // `import * as pg from 'pg'` gives a namespace whose default is the module itself.
  const candidate = isPgModule((pgModule as { default?: unknown } | null)?.default) ? (pgModule as { default: unknown }).default : pgModule;
  if (!isPgModule(candidate)) {
    throw new TypeError("instrumentPg(pg) needs the pg module itself (require('pg') or `import pg from 'pg'`), with its Client and Pool.");
  }
  const pg = candidate;
  configurePg(options);
  return install(pg, 'pg', () => applyAll([() => instrumentClientClass(pg.Client), () => instrumentPoolClass(pg.Pool)]));
}
