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
    const states = await Promise.all(clients.flatMap((client) => [pgConnectionProbe.confirm!(client), pgConnectionProbe.confirm!(client)]));
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
