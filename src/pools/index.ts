import type { ModulePatch } from '../core/module-hooks.js';
import { instrumentGenericPool } from './generic-pool.js';
import { instrumentKnexPgClient, instrumentKnexRunner, instrumentKnexTransaction } from './knex.js';
import { instrumentSequelizePool } from './sequelize-pool.js';
import { instrumentTarnPool } from './tarn.js';

export { instrumentGenericPool } from './generic-pool.js';
export { instrumentSequelizePool } from './sequelize-pool.js';
export { instrumentTarnPool } from './tarn.js';

const poolClass = (exports: unknown): unknown => (exports as { Pool?: unknown } | null)?.Pool;

/**
 * The pool libraries that keep pools of pg clients, patched where the app's own copies load: each
 * one's checkouts and returns become the records of its clients (see src/pg/checkout.ts), and
 * knex's transactions keep the app's line as their acquisition site.
 */
export function poolModulePatches(): ModulePatch[] {
  return [
    { package: 'tarn', file: 'dist/Pool.js', majors: [3], patch: (exports) => instrumentTarnPool(poolClass(exports)) },
    { package: 'sequelize-pool', file: 'lib/Pool.js', majors: [7, 8], patch: (exports) => instrumentSequelizePool(poolClass(exports)) },
    { package: 'generic-pool', file: 'lib/Pool.js', majors: [3], patch: (Pool) => instrumentGenericPool(Pool) },
    { package: 'knex', file: 'lib/dialects/postgres/index.js', majors: [2, 3], patch: (Client) => instrumentKnexPgClient(Client) },
    { package: 'knex', file: 'lib/execution/transaction.js', majors: [2, 3], patch: (Transaction) => instrumentKnexTransaction(Transaction) },
    { package: 'knex', file: 'lib/execution/runner.js', majors: [2, 3], patch: (Runner) => instrumentKnexRunner(Runner) },
  ];
}
