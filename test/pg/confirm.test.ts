import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntime, resetRuntime } from '../support/internals.js';
import { closeActivityReaders, instrumentPg, pgConnectionProbe } from '../../src/pg/index.js';
import { pgUrl } from './support.js';

const logged: string[] = [];
let undo: () => void;
beforeAll(() => {
  resetRuntime();
  ensureRuntime({ log: (line) => void logged.push(line) });
  undo = instrumentPg(pg);
});
afterAll(() => {
  undo();
  closeActivityReaders();
});

describe('pgConnectionProbe › confirmation through pg_stat_activity', () => {
  it('answers many lookups with one connection of its own, batched, never tracked as the app’s', async () => {
    const { ledger } = ensureRuntime();
    const clients = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const client = new pg.Client(pgUrl());
        await client.connect();
        return client;
      }),
    );
    await clients[0].query('BEGIN');
    const heldBefore = ledger.held.size;
    // Count what the reader sends: its Client is leakwatch's private copy of pg's.
    const { privateClientClass } = await import('../../src/pg/private-copy.js');
    const Reader = privateClientClass(pg.Client) as unknown as { prototype: { query: (...args: unknown[]) => unknown } };
    const readerQuery = Reader.prototype.query;
    let sent = 0;
    Reader.prototype.query = function (this: unknown, ...args: unknown[]) {
      sent++;
      return readerQuery.apply(this, args);
    };
    const states = await Promise.all(clients.flatMap((client) => [pgConnectionProbe.confirm!(client), pgConnectionProbe.confirm!(client)])).finally(
      () => (Reader.prototype.query = readerQuery),
    );
    expect(sent).toBe(1); // ten lookups, one query
    expect(states.map((s) => s?.pid)).toEqual(clients.flatMap((c) => [c.processID, c.processID]));
    expect(states[0]?.state).toBe('idle in transaction');
    expect(states.slice(2).every((s) => s?.state === 'idle')).toBe(true);
    expect(ledger.held.size).toBe(heldBefore);

    const observer = clients[1];
    const { rows } = await observer.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`leakwatch:${process.pid}`]);
    expect(rows[0].n).toBe(1);
    expect(pgConnectionProbe.serverIdentity!(clients[2])).toEqual({ pid: clients[2].processID });
    await Promise.all(clients.map((client) => client.end()));
  });

  describe('when another tool wraps the app’s Client (a patcher, an agent)', () => {
    it('asks through a private copy of the app’s pg: no wrapper sees it, and require.cache is unchanged', async () => {
      const seen: string[] = [];
      const query = pg.Client.prototype.query;
      pg.Client.prototype.query = function countedQuery(this: pg.Client, ...args: unknown[]) {
        seen.push(String((args[0] as { text?: string })?.text ?? args[0]));
        return (query as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof query;
      const cached = Object.keys(require.cache).sort();
      const client = new pg.Client(pgUrl());
      try {
        await client.connect();
        closeActivityReaders(); // a reader made by the test above would be reused
        const state = await pgConnectionProbe.confirm!(client);
        expect(state).toMatchObject({ pid: client.processID, state: 'idle' });
        expect(seen).toEqual([]);
        expect(Object.keys(require.cache).sort()).toEqual(cached);
      } finally {
        pg.Client.prototype.query = query;
        await client.end();
      }
    });

    it('is another class than the app’s, made once per pg, for a subclass of the app’s Client and for pg.native’s', async () => {
      const { privateClientClass } = await import('../../src/pg/private-copy.js');
      const Private = privateClientClass(pg.Client);
      expect(Private).not.toBe(pg.Client);
      expect(Private.name).toBe('Client');
      expect(privateClientClass(pg.Client)).toBe(Private); // made once
      class AppClient extends pg.Client {}
      expect(privateClientClass(AppClient)).toBe(Private); // a subclass: the pg it extends
      // pg.native's Client (pg-native is not installed here: its module is planted in the cache).
      const nativeFile = path.join(path.dirname(require.resolve('pg/lib/client.js')), 'native', 'client.js');
      class NativeClient {}
      require.cache[nativeFile] = { id: nativeFile, filename: nativeFile, loaded: true, exports: NativeClient } as unknown as NodeModule;
      try {
        expect(privateClientClass(NativeClient)).toBe(Private);
      } finally {
        delete require.cache[nativeFile];
      }
      expect(() => privateClientClass(class NotPg {})).toThrow(/no pg lib\/client\.js in require\.cache/);
    });
  });

  it('resolves null, never rejects, and logs once when it cannot connect', async () => {
    const unreachable = new pg.Client({ host: '127.0.0.1', port: 1, database: 'nowhere', user: 'nobody' });
    Object.assign(unreachable, { processID: 4242 });
    expect(await pgConnectionProbe.confirm!(unreachable)).toBeNull();
    expect(logged.filter((line) => line.includes('pg_stat_activity'))).toHaveLength(1);
    expect(await pgConnectionProbe.confirm!(unreachable)).toBeNull(); // backing off: no new attempt
    expect(logged.filter((line) => line.includes('pg_stat_activity'))).toHaveLength(1);
    expect(await pgConnectionProbe.confirm!({})).toBeNull();
  });
});
