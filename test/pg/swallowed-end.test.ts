import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-swallowed-end.mjs';
import { close, fireAndForget, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { openLeaks, useLeakwatchAndPool } from './support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 300, connectionThreshold: 300 });

describe('instrumentPg(pg) › when a middleware swallows res.end and the client is released on finish', () => {
  it('reports the leaked response and its idle client, linked both ways', async () => {
    const server = createServer({ pool: setup.pool });
    const port = await listen(server);
    expect(await request(port, '/orders/7')).toMatchObject({ status: 200, body: '{"id":7}' });
    fireAndForget(port, '/orders/not-a-number?token=hunter2');

    const { ledger } = setup;
    await waitUntil(() => openLeaks(ledger).connections.length === 1, 3000, 'the stranded client to leak');
    const { responses, connections } = openLeaks(ledger);
    expect(responses).toHaveLength(1);
    const [response] = responses;
    const [connection] = connections;
    expect(response.leak?.reason).toBe('unclosed');
    expect(response.detail?.path).toBe('/orders/not-a-number');
    expect(connection).toMatchObject({ kind: 'pg', pooled: true, pool: '127.0.0.1:5432/test', state: 'idle' });
    expect(connection.leak?.reason).toBe('held-by-leaked-response');
    expect(connection.owner).toBe(response);
    expect([...(response.connections ?? [])]).toEqual([connection]);

    const report = reportOf(ledger);
    expect(report.leakedResponses).toHaveLength(1);
    expect(report.leakedResponses[0].connections).toEqual([connection.id]);
    expect(report.leakedConnections).toHaveLength(1);
    expect(report.leakedConnections[0]).toMatchObject({ id: connection.id, owner: response.id, ownerState: 'open', state: 'idle' });
    expect(report.leakedConnections[0].acquiredAt).toMatch(/pg-swallowed-end\.mjs/);
    await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
    expect(connection.server).toMatchObject({ pid: (connection.target as pg.PoolClient).processID, state: 'idle' });
    await close(server);
  });
});
