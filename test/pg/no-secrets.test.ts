import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-transaction-early-return.mjs';
import { poolStats } from '../../src/index.js';
import { close, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { forceEnd, openLeaks, pgUrl, startLeakwatch } from './support.js';

const PASSWORD = 'Pa55-w0rd-7c1e';
const logged: string[] = [];
let leakwatch: ReturnType<typeof startLeakwatch>;
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 300, connectionThreshold: 300, log: (line) => void logged.push(line) });
});
afterAll(() => leakwatch.stop());

describe('instrumentPg(pg) › what leakwatch records', () => {
  it('carries no SQL parameter value and no password, in reports, pool names, stacks or logs', async () => {
    // trust authentication ignores the password, so it can be any secret here
    const url = new URL(pgUrl());
    url.password = PASSWORD;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 3 });
    const server = createServer({ pool });
    const port = await listen(server);
    expect(await request(port, '/transfer?amount=-424242')).toMatchObject({ status: 400 });
    expect(await request(port, '/transfer?amount=sekr1t-amount')).toMatchObject({ status: 500 });

    const { ledger } = leakwatch;
    await waitUntil(() => openLeaks(ledger).connections.filter((c) => c.server?.state).length === 2, 3000, 'two confirmed leaks');
    const everything = JSON.stringify({ report: reportOf(ledger), pools: poolStats(), logged });
    expect(everything).toContain('127.0.0.1:5432/test');
    expect(everything).toContain('idle in transaction');
    for (const secret of [PASSWORD, '424242', 'sekr1t']) expect(everything).not.toContain(secret);
    await forceEnd(pool);
    await close(server);
  });
});
