import { createRequire } from 'node:module';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentPg, poolStats, watchPool } from '../../src/index.js';
import { ensureRuntime, resetRuntime } from '../support/internals.js';
import { onModuleLoad } from '../../src/core/module-hooks.js';
import { closeActivityReaders, endpointName, pgModulePatches } from '../../src/pg/index.js';

const originalOf = (fn: unknown) => (fn as { __original?: unknown }).__original;
import { endpointOfConnectionString } from '../../src/pg/naming.js';
import { pgUrl, recordOf } from './support.js';

const require = createRequire(import.meta.url);
const PgPoolClass = require('pg-pool') as { prototype: object };
const ClientProto = pg.Client.prototype as object;

const descriptors = () => ({
  poolMarks: Object.getOwnPropertySymbols(PgPoolClass.prototype),
  clientMarks: Object.getOwnPropertySymbols(ClientProto),
  poolConnect: Object.getOwnPropertyDescriptor(PgPoolClass.prototype, 'connect'),
  poolQuery: Object.getOwnPropertyDescriptor(PgPoolClass.prototype, 'query'),
  poolNewClient: Object.getOwnPropertyDescriptor(PgPoolClass.prototype, 'newClient'),
  clientConnect: Object.getOwnPropertyDescriptor(ClientProto, 'connect'),
  clientQuery: Object.getOwnPropertyDescriptor(ClientProto, 'query'),
  clientEnd: Object.getOwnPropertyDescriptor(ClientProto, 'end'),
});

beforeAll(() => {
  resetRuntime();
  ensureRuntime({ responseThreshold: 300, connectionThreshold: 300 });
});
afterAll(() => closeActivityReaders());

describe('watchPool(pool) on a pg that is not instrumented', () => {
  it('follows that one pool’s checkouts and gauges, under its name, and gives it back its own methods', async () => {
    const original = descriptors();
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 3 });
    const undo = watchPool(pool, { name: 'orders' });
    expect(watchPool(pool)).toBe(undo);
    expect(descriptors()).toEqual(original); // the class is untouched
    expect(Object.hasOwn(pool, 'connect')).toBe(true);

    const client = await pool.connect();
    const record = recordOf(client);
    expect(record).toMatchObject({ pool: 'orders', pooled: true, state: 'idle' });
    const running = client.query('SELECT pg_sleep(0.05)');
    expect(record.state).toBe('busy');
    await running;
    expect(record.state).toBe('idle');
    expect(poolStats()).toEqual([{ name: 'orders', total: 1, idle: 0, used: 1, pending: 0, max: 3 }]);
    client.release();
    expect(record.isHeld).toBe(false);
    expect(poolStats()).toEqual([{ name: 'orders', total: 1, idle: 1, used: 0, pending: 0, max: 3 }]);

    undo();
    expect(Object.hasOwn(pool, 'connect')).toBe(false);
    expect(Object.hasOwn(pool, 'query')).toBe(false);
    expect(pool.listenerCount('release')).toBe(0);
    expect(poolStats()).toEqual([]);
    const again = await pool.connect();
    expect(() => recordOf(again)).toThrow(/not held/);
    again.release();
    await pool.end();
  });

  it('takes the name from the pool option leakwatchName, and rejects what is not a pool', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), leakwatchName: 'billing' } as pg.PoolConfig);
    const undo = watchPool(pool);
    expect(poolStats().map((s) => s.name)).toEqual(['billing']);
    undo();
    await pool.end();
    expect(() => watchPool({})).toThrow(/needs a pg Pool/);
    expect(() => watchPool(new pg.Pool(), { name: '' })).toThrow(/watchPool option name/);
  });
});

describe('instrumentPg(pg)', () => {
  it('patches once for every caller, marks what it patched, and the last undo restores pg’s methods exactly', () => {
    const original = descriptors();
    const undo = instrumentPg(pg);
    const second = instrumentPg(pg);
    const patched = descriptors();
    expect(patched.poolConnect?.value).not.toBe(original.poolConnect?.value);
    expect(originalOf(pg.Pool.prototype.connect)).toBe(original.poolConnect?.value);
    expect(originalOf(pg.Client.prototype.connect)).toBe(original.clientConnect?.value);
    expect(patched.poolConnect?.enumerable).toBe(original.poolConnect?.enumerable);
    expect(pg.Pool.prototype.connect.name).toBe('connect');
    undo();
    expect(descriptors()).toEqual(patched); // the second caller still has it
    second();
    expect(descriptors()).toEqual(original);
    expect(Object.getOwnPropertySymbols(pg)).toEqual([]);
    const again = instrumentPg(pg);
    expect(again).not.toBe(undo);
    again();
    expect(descriptors()).toEqual(original);
  });

  it('is what the module hooks apply to a pg already loaded, and its undo takes out pg-pool’s patch too', () => {
    const original = descriptors();
    const unhook = pgModulePatches().map((patch) => onModuleLoad(patch));
    expect(originalOf(pg.Pool.prototype.connect)).toBe(original.poolConnect?.value);
    expect(originalOf(pg.Client.prototype.end)).toBe(original.clientEnd?.value);
    for (const undo of unhook) undo();
    instrumentPg(pg)();
    expect(descriptors()).toEqual(original);
  });

  it('gives each client’s connection its own methods back when the client ends', async () => {
    const undo = instrumentPg(pg);
    const client = new pg.Client(pgUrl());
    await client.connect();
    const connection = (client as unknown as { connection: object }).connection;
    expect(Object.hasOwn(connection, 'sync')).toBe(true);
    await client.end();
    expect(['query', 'sync', 'describe', 'execute'].filter((name) => Object.hasOwn(connection, name))).toEqual([]);
    undo();
  });

  it('lets go of every client of a pool on undo, whether only pool.query() used it or a connect() checkout followed its wire', async () => {
    const undo = instrumentPg(pg);
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    const kept = await pool.connect();
    await pool.query('SELECT 1'); // on the second client: the first is checked out
    kept.release();
    const clients = (pool as unknown as { _clients: object[] })._clients;
    expect(clients).toHaveLength(2);
    const marks = () => clients.flatMap((client) => Object.getOwnPropertySymbols(client).map(String)).filter((mark) => mark.includes('leakwatch'));
    expect(marks()).toHaveLength(2);
    undo();
    expect(marks()).toEqual([]);
    await pool.end();
  });

  it('passes connection errors through unchanged and lets the failed client go', async () => {
    const undo = instrumentPg(pg);
    const held = ensureRuntime().ledger.held.size;
    const client = new pg.Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 });
    const error = await client.connect().catch((e: unknown) => e);
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 20));
    expect(ensureRuntime().ledger.held.size).toBe(held);
    undo();
  });

  it('accepts an ES module namespace of pg and refuses anything else with a sentence', () => {
    const undo = instrumentPg({ default: pg });
    expect(originalOf(pg.Client.prototype.connect)).toBeTypeOf('function');
    undo();
    expect(originalOf(pg.Client.prototype.connect)).toBeUndefined();
    expect(() => instrumentPg({})).toThrow(/instrumentPg\(pg\) needs the pg module/);
  });
});

describe('pool names', () => {
  it('are host:port/database as pg resolves them, never a user or password', () => {
    const env = {};
    expect(endpointName({ connectionString: 'postgres://bob:s3cret@db.internal:6432/orders?sslmode=require' }, undefined, env)).toBe('db.internal:6432/orders');
    expect(endpointName({ host: 'db', database: 'shop' }, undefined, env)).toBe('db:5432/shop');
    expect(endpointName({ user: 'alice' }, undefined, env)).toBe('localhost:5432/alice');
    expect(endpointName({}, undefined, { PGHOST: 'pghost', PGPORT: '5433', PGDATABASE: 'envdb' })).toBe('pghost:5433/envdb');
    expect(endpointName({ connectionString: 'postgresql:///app?host=/var/run/postgresql' }, undefined, env)).toBe('/var/run/postgresql:5432/app');
    // pg lets the connection string win over explicit options
    expect(endpointName({ host: 'ignored', connectionString: 'postgres://u:p@real:5432/db' }, undefined, env)).toBe('real:5432/db');
    expect(endpointOfConnectionString('not a url')).toEqual({});
  });
});
