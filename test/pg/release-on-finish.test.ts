import { describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-release-on-finish.mjs';
import { close, listen, request, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { openLeaks, useLeakwatchAndPool } from './support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 300, connectionThreshold: 300 });

describe('instrumentPg(pg) › when the client is released on finish only and the client aborts', () => {
  it('reports the client as held after its response closed, and nothing for the request that finished', async () => {
    const server = createServer({ pool: setup.pool, slowMs: 200 });
    const port = await listen(server);
    expect(await request(port, '/report')).toMatchObject({ status: 200 });
    expect(await request(port, '/report?session=abc', { abortAfterMs: 50 })).toBe('aborted');

    const { ledger } = setup;
    await waitUntil(() => openLeaks(ledger).connections.length === 1, 3000, 'the stranded client to leak');
    const [connection] = openLeaks(ledger).connections;
    expect(openLeaks(ledger).responses).toEqual([]); // an aborted response is counted, not reported
    expect(ledger.totals.aborted).toBe(1);
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    expect(connection.state).toBe('idle');
    expect(connection.owner?.outcome).toBe('aborted');
    const report = reportOf(ledger).leakedConnections;
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ owner: connection.owner?.id, ownerState: 'closed', ownerPath: '/report', reason: 'held-after-response-closed' });
    expect(setup.pool.totalCount - setup.pool.idleCount).toBe(1);
    await close(server);
  });
});
