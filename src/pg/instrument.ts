import { instrumentClientClass } from './client.js';
import type { PgModule } from './internal-types.js';
import { instrumentOnce } from './patch.js';
import { instrumentPoolClass } from './pool.js';

function isPgModule(value: unknown): value is PgModule {
  const pg = value as PgModule | null;
  return pg !== null && typeof pg === 'object' && typeof pg.Client === 'function' && typeof pg.Pool === 'function';
}

/**
 * Instruments one copy of `pg`: every `Pool` checkout and every `Client` of it, from now on.
 * Idempotent (a second call returns the first undo); the undo restores pg's own methods exactly,
 * including those of its pg-pool.
 * `leakwatch/register` and `start()` call it for each copy of pg the app loads.
 */
export function instrumentPg(pgModule: unknown): () => void {
  // `import * as pg from 'pg'` gives a namespace whose default is the module itself.
  const candidate = isPgModule((pgModule as { default?: unknown } | null)?.default) ? (pgModule as { default: unknown }).default : pgModule;
  if (!isPgModule(candidate)) {
    throw new TypeError("instrumentPg(pg) needs the pg module itself (require('pg') or `import pg from 'pg'`), with its Client and Pool.");
  }
  const pg = candidate;
  // The undo covers the Pool and Client classes even when the module hooks patched pg-pool first.
  return instrumentOnce(pg, () => [instrumentClientClass(pg.Client), instrumentPoolClass(pg.Pool)]);
}
