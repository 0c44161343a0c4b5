// The ledger's own cost per response (open + close) and per connection (acquire, a busy/idle
// turn, release), in-process, without HTTP; and a deadline sweep with many open and nothing due.
// A connection owned by a response keeps an event history (src/core/history.ts); its cost is
// measured against the same ledger with the history turned off, round by round.
import { Ledger } from '../dist/core/ledger.js';
import { summary } from './lib/stats.mjs';

export const title = 'Ledger microbenchmarks';

const probe = { progress: () => 0, method: () => 'GET', path: () => '/', route: () => null, endOverrides: () => [] };

function newLedger(currentResponse = () => undefined) {
  return new Ledger({ responseThresholdMs: 30_000, connectionThresholdMs: 10_000, maxReportedLeaks: 1000, onFailure: () => {}, currentResponse, timer: false });
}

/** A checkout by a request: acquire, a query's busy/idle turn, release, as pg does per pool.query(). */
function ownedCheckouts(ledger, n) {
  for (let i = 0; i < n; i++) {
    const c = ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true });
    ledger.connectionBusy(c);
    ledger.connectionIdle(c, 'idle');
    ledger.releaseConnection(c);
  }
}

function time(fn, n) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n; // ns per operation
}

export async function run({ rounds = 7 } = {}) {
  const perResponse = [];
  const perConnection = [];
  const perOwned = [];
  const perOwnedNoHistory = [];
  const target = {};
  for (let r = 0; r < rounds; r++) {
    // The same checkouts with the history and without it (startHistory made a no-op), alternating.
    const owner = newLedger().openResponse(target, probe);
    const withHistory = newLedger(() => owner);
    const without = newLedger(() => owner);
    without.startHistory = () => {};
    const pair = [
      [withHistory, perOwned],
      [without, perOwnedNoHistory],
    ];
    for (const [ledger, into] of r % 2 === 0 ? pair : pair.reverse()) into.push(time((n) => ownedCheckouts(ledger, n), 500_000));
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
    `| connection owned by a response (history kept): acquire + busy + idle + release | ${summary(perOwned, 0)} |`,
    `| the same with the history turned off (reference) | ${summary(perOwnedNoHistory, 0)} |`,
    `| deadline sweep, 100,000 open, nothing due | ${summary(sweeps, 0)} |`,
  ].join('\n');
  const added = perOwned.map((v, i) => v - perOwnedNoHistory[i]).sort((a, b) => a - b)[Math.floor(rounds / 2)];
  return { markdown: `${markdown}\n\nThe event history adds ${added.toFixed(0)} ns per owned checkout (median of per-round differences); a response adds nothing until it outlives a threshold.`, figures: { historyNsPerCheckout: added } };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log((await run()).markdown);
