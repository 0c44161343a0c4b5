import type { ModulePatch } from '../core/module-hooks.js';
import { poolModulePatches } from '../pools/index.js';
import { instrumentClientClass } from './client.js';
import { configurePg, type PgInstrumentationOptions } from './instrument.js';
import { instrumentPoolClass } from './pool.js';

export { configurePg, instrumentPg, type PgInstrumentationOptions } from './instrument.js';
export { instrumentClientClass } from './client.js';
export { instrumentPoolClass, watchPool } from './pool.js';
export { poolStats } from './checkout.js';
export { closeActivityReaders, pgConnectionProbe } from './confirm.js';
export { endpointName } from './naming.js';
export type { PgPoolStats, WatchPoolOptions } from './types.js';

/**
 * What `start()` and `leakwatch/register` patch in the app's own pg as it loads, wherever it is
 * loaded from (`pg`, `pg/lib/client.js`, an ES import): the Client class where it is defined,
 * pg-pool's Pool, which pg's Pool extends and some apps use directly, and the pool libraries that
 * keep pools of pg clients themselves (tarn for knex, sequelize-pool, generic-pool).
 */
export function pgModulePatches(options: PgInstrumentationOptions = {}): ModulePatch[] {
  configurePg(options);
  return [
    { package: 'pg', file: 'lib/client.js', majors: [8], library: 'pg', patch: (Client) => instrumentClientClass(Client) },
    { package: 'pg-pool', file: 'index.js', majors: [3], patch: (Pool) => instrumentPoolClass(Pool) },
    ...poolModulePatches(),
  ];
}
