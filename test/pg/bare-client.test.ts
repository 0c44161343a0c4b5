import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../fixtures/pg-bare-client.mjs';
import { formatStack } from '../../src/core/stack.js';
import { close, listen, request, waitUntil, sleep } from '../support/http.js';
import { openLeaks, pgUrl, startLeakwatch } from './support.js';

let leakwatch: ReturnType<typeof startLeakwatch>;
beforeAll(() => {
  leakwatch = startLeakwatch({ responseThreshold: 300, connectionThreshold: 300 });
});
afterAll(() => leakwatch.stop());

describe('instrumentPg(pg) › when a request makes its own Client and never ends it', () => {
  it('reports that client as leaked, and not the one the other route ends', async () => {
    const server = createServer({ connectionString: pgUrl() });
    const port = await listen(server);
    expect(await request(port, '/stats-closed')).toMatchObject({ status: 200 });
    expect(await request(port, '/stats')).toMatchObject({ status: 200 });

    const { ledger } = leakwatch;
    await waitUntil(() => openLeaks(ledger).connections.length > 0, 3000, 'the bare client to leak');
    await sleep(100);
    const { connections } = openLeaks(ledger);
    expect(connections).toHaveLength(1);
    const [connection] = connections;
    expect(connection).toMatchObject({ kind: 'pg', pooled: false, pool: '127.0.0.1:5432/test', state: 'idle' });
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    expect(connection.owner?.detail?.path).toBe('/stats');
    expect(formatStack(connection.stack)).toMatch(/pg-bare-client\.mjs/);
    expect(ledger.held.size).toBe(1);

    // Ending it late resolves the leak.
    await (connection.target as { end(): Promise<void> }).end();
    expect(connection.leak?.resolvedAt).toBeGreaterThan(0);
    expect(ledger.held.size).toBe(0);
    await close(server);
  });
});
