// The ledger's own cost per response (open + close) and per connection (acquire, a busy/idle
// turn, release), in-process, without HTTP; and a deadline sweep with many open and nothing due.
import { Ledger } from '../dist/core/ledger.js';
import { summary } from './lib/stats.mjs';

export const title = 'Ledger microbenchmarks';

const probe = { progress: () => 0, method: () => 'GET', path: () => '/', route: () => null, endOverrides: () => [] };

function newLedger() {
  return new Ledger({ responseThresholdMs: 30_000, connectionThresholdMs: 10_000, maxReportedLeaks: 1000, onFailure: () => {}, currentResponse: () => undefined, timer: false });
}

function time(fn, n) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n; // ns per operation
}

export async function run({ rounds = 7 } = {}) {
  const perResponse = [];
  const perConnection = [];
  const target = {};
  for (let r = 0; r < rounds; r++) {
    const ledger = newLedger();
    perResponse.push(
      time((n) => {
        for (let i = 0; i < n; i++) ledger.closeResponse(ledger.openResponse(target, probe), 'finished');
      }, 500_000),
    );
    perConnection.push(
      time((n) => {
        for (let i = 0; i < n; i++) {
          const c = ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: false });
          ledger.connectionBusy(c);
          ledger.connectionIdle(c);
          ledger.releaseConnection(c);
        }
      }, 500_000),
    );
  }
  // 100,000 open responses, then a sweep when nothing is due.
  const ledger = newLedger();
  for (let i = 0; i < 100_000; i++) ledger.openResponse({}, probe);
  const sweeps = [];
  for (let r = 0; r < rounds; r++) sweeps.push(time((n) => { for (let i = 0; i < n; i++) ledger.sweep(ledger.now()); }, 10_000));
  const markdown = [
    `### ${title}`,
    '',
    `In-process, ${rounds} rounds, median (min–max).`,
    '',
    '| operation | ns |',
    '| --- | --- |',
    `| response: open + close | ${summary(perResponse, 0)} |`,
    `| connection: acquire + busy + idle + release | ${summary(perConnection, 0)} |`,
    `| deadline sweep, 100,000 open, nothing due | ${summary(sweeps, 0)} |`,
  ].join('\n');
  return { markdown };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log((await run()).markdown);
