import { describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-query-stream.mjs';
import { close, listen, sleep, waitUntil } from '../support/http.js';
import { reportOf } from '../support/leaks.js';
import { getAndLeave, openLeaks, useLeakwatchAndPool } from './support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 300, connectionThreshold: 300 });

describe('instrumentPg(pg) › when a pg-query-stream is piped into the response and the client aborts', () => {
  it('reports the paused cursor’s client as idle and leaked, owned by the closed response', async () => {
    const server = createServer({ pool: setup.pool });
    const port = await listen(server);
    const { ledger } = setup;

    await getAndLeave(port, '/export-safe', 100); // stream.pipeline() destroys the stream: healthy
    await getAndLeave(port, '/export', 100);

    await waitUntil(() => openLeaks(ledger).connections.length > 0, 3000, 'the paused cursor’s client to leak');
    await sleep(400); // the safe export would have leaked by now too
    const { connections, responses } = openLeaks(ledger);
    expect(responses).toEqual([]);
    expect(connections).toHaveLength(1);
    const [connection] = connections;
    expect(connection.owner?.detail?.path).toBe('/export');
    expect(connection.owner?.outcome).toBe('aborted');
    expect(connection.state).toBe('idle'); // paused: no read in flight
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    // The server disagrees: without a Sync the portal is still "active" there.
    await waitUntil(() => typeof connection.server?.state === 'string', 3000, 'pg_stat_activity');
    expect(connection.server?.state).toBe('active');
    expect(reportOf(ledger).leakedConnections[0]).toMatchObject({ state: 'idle', ownerState: 'closed', ownerPath: '/export' });
    await close(server);
  });
});
