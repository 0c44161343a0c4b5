import { describe, expect, it } from 'vitest';
import { wrapFetchHandler } from '../../src/index.js';
import { createApp } from '../../fixtures/hono-body-wrapper.mjs';
import { sleep, waitUntil } from '../support/http.js';
import { openLeaks, useLeakwatchAndPool } from './support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 300, connectionThreshold: 300 });

async function readSomeThenCancel(fetch: (r: Request) => Promise<Response>, url: string): Promise<void> {
  const response = await fetch(new Request(url));
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel('client went away');
}

describe('wrapFetchHandler(app.fetch) › when a middleware re-wraps the body without passing cancel() on', () => {
  it('closes the response as aborted and reports the cursor’s pg client held after it closed', async () => {
    const app = createApp({ pool: setup.pool });
    const fetch = wrapFetchHandler(app.fetch) as (r: Request) => Promise<Response>;
    const { ledger } = setup;

    await readSomeThenCancel(fetch, 'http://app/rows?safe'); // no wrapper: the cancel reaches the cursor
    await readSomeThenCancel(fetch, 'http://app/rows?token=x');

    await waitUntil(() => openLeaks(ledger).connections.length > 0, 3000, 'the stranded client to leak');
    await sleep(400); // the safe one would have leaked by now too
    const { connections, responses } = openLeaks(ledger);
    expect(responses).toEqual([]); // both responses closed (aborted): counted, not reported
    expect(connections).toHaveLength(1);
    expect(connections[0].leak?.reason).toBe('held-after-response-closed');
    expect(connections[0].owner?.outcome).toBe('aborted');
    expect(connections[0].owner?.detail?.path).toBe('/rows');
    expect(setup.pool.totalCount - setup.pool.idleCount).toBe(1);
  });
});
