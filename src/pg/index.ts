import type { ModulePatch } from '../core/module-hooks.js';
import { instrumentPg } from './instrument.js';
import { instrumentPoolClass } from './pool.js';

export { instrumentPg } from './instrument.js';
export { instrumentClientClass } from './client.js';
export { instrumentPoolClass, poolStats, watchPool } from './pool.js';
export { closeActivityReaders, pgConnectionProbe } from './confirm.js';
export { endpointName } from './naming.js';
export { PATCHED as PG_PATCHED } from './patch.js';
export type { PgPoolStats, WatchPoolOptions } from './types.js';

/**
 * Patches `leakwatch/register` applies to the app's own `pg` as it loads. pg-pool is its own
 * package (pg requires it), patched as well for apps that use it directly.
 */
export const pgModulePatches: ModulePatch[] = [
  { file: 'pg-pool/index.js', patch: (Pool) => instrumentPoolClass(Pool) },
  { file: 'pg/lib/index.js', patch: (pg) => instrumentPg(pg) },
];
