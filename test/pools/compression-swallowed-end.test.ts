import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createServer, getGzipAndLeave } from '../../fixtures/compression-release-on-end.mjs';
import { describeLeakedConnection } from '../../src/report/text.js';
import { close, listen, sleep, waitUntil } from '../support/http.js';
import { ROOT } from '../support/cli.js';
import { openLeaks, pgUrl, useLeakwatchAndPool } from '../pg/support.js';
import { lineOf, validReport } from './support.js';

const setup = useLeakwatchAndPool({ responseThreshold: 1000, connectionThreshold: 300 });

/** `file:line:column` where compression 1.8 assigns res.end. */
function compressionEndSite(): string {
  const file = path.join(ROOT, 'node_modules/compression/index.js');
  const lines = readFileSync(file, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.includes('res.end = function end'));
  return `${file}:${line + 1}:${lines[line].indexOf('res.end') + 9}`;
}

describe('compression 1.8 › when the client leaves mid-response and the app releases its client in a res.end wrapper', () => {
  it('reports the stranded client with its aborted owner’s res.end replacements: the app’s never called, compression’s called but not through', async () => {
    const server = createServer({ pool: setup.pool });
    const port = await listen(server);
    const { ledger } = setup;
    await getGzipAndLeave(port, '/orders');

    await waitUntil(() => openLeaks(ledger).connections.length === 1, 3000, 'the stranded client to leak');
    const [connection] = openLeaks(ledger).connections;
    expect(connection.leak?.reason).toBe('held-after-response-closed');
    expect(openLeaks(ledger).responses).toEqual([]); // aborted: counted, not reported by itself
    // The handler goes on after the client left, and ends its response (into compression's end) later.
    await waitUntil(() => validReport(ledger).leakedConnections[0].ownerEndOverrides.some((o) => o.called), 3000, 'the handler to call res.end');
    const reported = validReport(ledger).leakedConnections[0];
    expect(reported).toMatchObject({ ownerPath: '/orders', ownerState: 'closed', ownerOutcome: 'aborted', state: 'idle' });
    expect(reported.ownerEndOverrides).toEqual([
      { at: expect.stringMatching(lineOf('compression-release-on-end.mjs', 'res.end = function releasingEnd')), called: false, calledThrough: false },
      { at: compressionEndSite(), called: true, calledThrough: false },
    ]);
    expect(reported.acquisitionSite).toMatch(lineOf('compression-release-on-end.mjs', 'const client = await pool.connect();'));

    const text = describeLeakedConnection(reported);
    expect(text).toMatch(/\n {2}owned by .*\n {2}the owner closed without finishing \(its client went away\); its res\.end replacements:\n/);
    expect(text).toMatch(/res\.end replaced at .*compression-release-on-end\.mjs:\d+:\d+: never called/);
    expect(text).toMatch(/res\.end replaced at .*compression[\\/]index\.js:\d+:\d+: called, but did not call the end it replaced/);
    await close(server);
  });
});

describe('compression 1.8 › when the client reads the whole response', () => {
  it('releases the client through both wrappers and reports nothing', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
    const server = createServer({ pool });
    const port = await listen(server);
    const { ledger } = setup;
    const before = ledger.leaks.length;
    const response = await fetch(`http://127.0.0.1:${port}/orders`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers.get('content-encoding')).toBe('gzip');
    expect(await response.text()).toMatch(/end of history/);
    await waitUntil(() => pool.idleCount === 1, 2000, 'the client back in the pool');
    await sleep(400);
    expect(ledger.leaks.length).toBe(before);
    await pool.end();
    await close(server);
  });
});
