import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { onModuleLoad } from '../../src/core/module-hooks.js';
import { instrumentGenericPool, instrumentSequelizePool, instrumentTarnPool, poolModulePatches } from '../../src/pools/index.js';
import { instrumentKnexPgClient, instrumentKnexRunner, instrumentKnexTransaction } from '../../src/pools/knex.js';

const require = createRequire(import.meta.url);
// Loaded before any hook: the hooks find them in require.cache.
const patched: Array<[string, object, string[]]> = [
  ['tarn', require('tarn').Pool.prototype, ['acquire', 'release', '_create']],
  ['sequelize-pool', require('sequelize-pool').Pool.prototype, ['acquire', 'release', 'destroy', '_createResource', '_addResourceToInUseObjects', '_addResourceToAvailableObjects']],
  ['generic-pool', require('generic-pool').Pool.prototype, ['acquire', 'release', 'destroy', '_createResource', '_addPooledResourceToAvailableObjects']],
  ['knex Client_PG', require('knex/lib/dialects/postgres/index.js').prototype, ['transaction']],
  ['knex Transaction', require('knex/lib/execution/transaction.js').prototype, ['acquireConnection']],
  ['knex Runner', require('knex/lib/execution/runner.js').prototype, ['run']],
];

const descriptors = () => patched.map(([, proto, names]) => names.map((name) => Object.getOwnPropertyDescriptor(proto, name)));
const wrapped = () => patched.flatMap(([library, proto, names]) => names.map((name) => [library, name, (proto as Record<string, { __wrapped?: boolean }>)[name].__wrapped === true]));

describe('the pool libraries’ instrumentations', () => {
  it('are applied by the module hooks to copies already loaded, once for every caller, and the last undo restores each method exactly', () => {
    const original = descriptors();
    const first = poolModulePatches().map((patch) => onModuleLoad(patch));
    const second = poolModulePatches().map((patch) => onModuleLoad(patch));
    expect(wrapped().filter(([, , isWrapped]) => !isWrapped)).toEqual([]);
    const once = descriptors();
    for (const undo of first) undo();
    expect(descriptors()).toEqual(once); // the second caller still has them
    for (const undo of second) undo();
    expect(descriptors()).toEqual(original);
  });

  it('refuse what is not the class they know, with a sentence', () => {
    expect(() => instrumentTarnPool({})).toThrow(/needs tarn's Pool class/);
    expect(() => instrumentSequelizePool(null)).toThrow(/needs sequelize-pool's Pool class/);
    expect(() => instrumentGenericPool(class {})).toThrow(/needs generic-pool's Pool class/);
    expect(() => instrumentKnexPgClient(class {})).toThrow(/has no transaction\(\)/);
    expect(() => instrumentKnexTransaction(class {})).toThrow(/has no acquireConnection\(\)/);
    expect(() => instrumentKnexRunner(class {})).toThrow(/has no run\(\)/);
  });
});
