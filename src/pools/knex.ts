import { logFailure } from '../core/guard.js';
import { install, ownerOf, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import type { StackCapture } from '../core/records.js';
import { captureStack } from '../core/stack.js';
import { shared } from '../core/state.js';
import { withCheckoutSite } from '../pg/checkout.js';
import { pgState } from '../pg/state.js';

/**
 * Where knex's checkouts come from. knex asks tarn for a connection from inside a builder's
 * `then()`, which the app's `await` calls from a microtask: neither the synchronous stack nor V8's
 * async frames reach the app's line there. So:
 * - a query run (`Runner#run`) releases its connection itself when the query ends: like
 *   `pool.query()`, it is never idle in the app's hands and needs no stack;
 * - a transaction's checkout (`Transaction#acquireConnection`, a microtask after
 *   `knex.transaction()`) takes the stack captured when the app called `knex.transaction()`
 *   (`Client#transaction`, synchronous in the app's code);
 * - a stream (`builder.stream()`, `.pipe()`) asks synchronously from the app's call, so the
 *   stack captured at the checkout already holds the app's frame.
 */

const transactionSites = shared('knexTransactionSites', () => new WeakMap<object, StackCapture>());

function wrapTransaction(layer: Layer): Fn {
  const transaction = function (this: unknown, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    let site: StackCapture | null = null;
    try {
      site = captureStack(pgState().stackFrames, transaction);
    } catch (error) {
      logFailure('knex transaction', error);
    }
    const trx: unknown = layer.original.apply(this, args);
    if (site !== null && trx !== null && typeof trx === 'object') transactionSites.set(trx, site);
    return trx;
  };
  return transaction as unknown as Fn;
}

function wrapTransactionAcquire(layer: Layer): Fn {
  return function acquireConnection(this: object, ...args: unknown[]) {
    const site = layer.active ? transactionSites.get(this) : undefined;
    if (site === undefined) return layer.original.apply(this, args);
    return withCheckoutSite(site, layer.original, this, args);
  };
}

function wrapRun(layer: Layer): Fn {
  return function run(this: unknown, ...args: unknown[]) {
    if (!layer.active) return layer.original.apply(this, args);
    return withCheckoutSite(null, layer.original, this, args);
  };
}

function patchPrototype(Class: unknown, name: string, key: string, wrap: (layer: Layer) => Fn): Undo {
  const proto = (Class as { prototype?: object } | null)?.prototype;
  const owner = proto === undefined || proto === null ? null : ownerOf(proto, name);
  if (owner === null) throw new TypeError(`knex's ${key} has no ${name}() to instrument.`);
  return install(owner, key, () => wrapMethod(owner, name, wrap) ?? (() => {}));
}

/** knex's postgres client (`lib/dialects/postgres/index.js`): where `knex.transaction()` lands. */
export const instrumentKnexPgClient = (Client: unknown): Undo => patchPrototype(Client, 'transaction', 'knex Client_PG', wrapTransaction);
/** knex's `Transaction` (`lib/execution/transaction.js`). */
export const instrumentKnexTransaction = (Transaction: unknown): Undo => patchPrototype(Transaction, 'acquireConnection', 'knex Transaction', wrapTransactionAcquire);
/** knex's `Runner` (`lib/execution/runner.js`). */
export const instrumentKnexRunner = (Runner: unknown): Undo => patchPrototype(Runner, 'run', 'knex Runner', wrapRun);
