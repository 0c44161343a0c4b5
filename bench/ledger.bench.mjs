// The ledger's own cost per response (open + close) and per connection (acquire, a busy/idle
// turn, release), in-process, without HTTP; and a deadline sweep with many open and nothing due.
// A connection owned by a response keeps an event history (src/core/history.ts); its cost is
// measured against the same ledger with the history turned off, round by round. A pg checkout
// also takes a 10-frame acquisition stack where it is requested (pg's `startCheckout`, with
// `captureStack`): that checkout is measured whole, with the stack, from 20 frames deep.
import { Ledger } from '../dist/core/ledger.js';
import { captureStack } from '../dist/core/stack.js';
import { startCheckout } from '../dist/pg/checkout.js';
import { pgState } from '../dist/pg/state.js';
import { median, summary } from './lib/stats.mjs';

export const title = 'Ledger microbenchmarks';

const probe = { progress: () => 0, method: () => 'GET', path: () => '/', route: () => null, endOverrides: () => [] };
const STACK_FRAMES = 10;
const CALL_DEPTH = 20; // frames under the measured loop: more than a capture takes, as in an app

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

/** A pool as pg's checkout sees it: it has an idle client, so nobody waits. */
const watch = { kind: 'pg', name: 'p', explicit: false, holdsPg: true, counts: () => ({ total: 1, idle: 1, used: 0, pending: 0, max: 10 }), unwatch() {} };
/** Stands for pg-pool's patched `connect()`: the acquisition stack is taken from its caller up. */
function connect() {
  return startCheckout(watch, connect);
}

/** The same owned checkout as ownedCheckouts(), requested as pg requests it: a 10-frame stack first. */
function checkoutsWithStack(ledger, n) {
  for (let i = 0; i < n; i++) {
    const checkout = connect();
    const c = ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: true, stack: checkout.stack });
    ledger.connectionBusy(c);
    ledger.connectionIdle(c, 'idle');
    ledger.releaseConnection(c);
  }
}

function capturesOnly(n) {
  let kept = 0;
  for (let i = 0; i < n; i++) if (captureStack(STACK_FRAMES, capturesOnly) !== null) kept++;
  return kept;
}

function capturesFormatted(n) {
  let length = 0;
  for (let i = 0; i < n; i++) length += captureStack(STACK_FRAMES, capturesFormatted).stack.length;
  return length;
}

/** Runs fn `depth` calls down the stack. */
function deep(depth, fn) {
  return depth === 0 ? fn() : deep(depth - 1, fn);
}

function time(fn, n) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n; // ns per operation
}

const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

export async function run({ rounds = 7, iterations = 500_000, stackIterations = 50_000 } = {}) {
  if (!(rounds >= 1)) throw new Error(`ledger: rounds must be at least 1, not ${rounds}`);
  const perResponse = [];
  const perConnection = [];
  const perOwned = [];
  const perOwnedNoHistory = [];
  const perStackCheckout = [];
  const perCapture = [];
  const perFormatted = [];
  const target = {};
  const frames = pgState().stackFrames;
  pgState().stackFrames = STACK_FRAMES;
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
    for (const [ledger, into] of r % 2 === 0 ? pair : pair.reverse()) into.push(time((n) => ownedCheckouts(ledger, n), iterations));
    const stacked = newLedger(() => owner);
    perStackCheckout.push(deep(CALL_DEPTH, () => time((n) => checkoutsWithStack(stacked, n), stackIterations)));
    perCapture.push(deep(CALL_DEPTH, () => time(capturesOnly, stackIterations)));
    perFormatted.push(deep(CALL_DEPTH, () => time(capturesFormatted, stackIterations)));
    const ledger = newLedger();
    perResponse.push(
      time((n) => {
        for (let i = 0; i < n; i++) ledger.closeResponse(ledger.openResponse(target, probe), 'finished');
      }, iterations),
    );
    perConnection.push(
      time((n) => {
        for (let i = 0; i < n; i++) {
          const c = ledger.acquireConnection({ kind: 'pg', pool: 'p', pooled: false });
          ledger.connectionBusy(c);
          ledger.connectionIdle(c);
          ledger.releaseConnection(c);
        }
      }, iterations),
    );
  }
  pgState().stackFrames = frames;
  const captured = deep(CALL_DEPTH, () => connect().stack?.stack ?? '');
  const framesTaken = captured.split('\n').filter((line) => line.trim().startsWith('at ')).length;
  // 100,000 open responses, then a sweep when nothing is due.
  const ledger = newLedger();
  for (let i = 0; i < 100_000; i++) ledger.openResponse({}, probe);
  const sweeps = [];
  for (let r = 0; r < rounds; r++) sweeps.push(time((n) => { for (let i = 0; i < n; i++) ledger.sweep(ledger.now()); }, 10_000));
  const markdown = [
    `### ${title}`,
    '',
    `In-process, ${rounds} rounds of ${iterations.toLocaleString('en')} operations (${stackIterations.toLocaleString('en')} for those with a stack), median (min–max).`,
    '',
    '| operation | ns |',
    '| --- | --- |',
    `| response: open + close | ${summary(perResponse, 0)} |`,
    `| connection: acquire + busy + idle + release | ${summary(perConnection, 0)} |`,
    `| connection owned by a response (history kept): acquire + busy + idle + release | ${summary(perOwned, 0)} |`,
    `| the same with the history turned off (reference) | ${summary(perOwnedNoHistory, 0)} |`,
    `| pg checkout owned by a response, stacks included: pg's \`startCheckout\` (a ${STACK_FRAMES}-frame acquisition stack) + acquire + busy + idle + release | ${summary(perStackCheckout, 0)} |`,
    `| for reference: \`captureStack(${STACK_FRAMES})\` alone (V8 collects the frames, does not format them) | ${summary(perCapture, 0)} |`,
    `| for reference: \`captureStack(${STACK_FRAMES})\` and its text read (the frames formatted) | ${summary(perFormatted, 0)} |`,
    `| deadline sweep, 100,000 open, nothing due | ${summary(sweeps, 0)} |`,
  ].join('\n');
  const added = median(perOwned.map((v, i) => v - perOwnedNoHistory[i]));
  // Is the capture's text read at the checkout? Then the stack checkout costs about a capture with
  // its text read on top of the ledger's part; otherwise about a bare capture.
  const stackPart = median(perStackCheckout) - median(perOwned);
  const formatsAtCheckout = stackPart > (median(perCapture) + median(perFormatted)) / 2;
  const notes = [
    `The event history adds ${added.toFixed(0)} ns per owned checkout (median of per-round differences); a response adds nothing until it outlives a threshold.`,
    `The stack adds ${stackPart.toFixed(0)} ns to an owned checkout (against the history-kept row), ${formatsAtCheckout ? 'about what a capture with its text read costs: the checkout reads the text of the stack it captured, so V8 formats the frames at every checkout, not only when a leak is reported' : 'about what a bare capture costs: the frames are collected at the checkout and formatted only when a leak is reported'}.`,
    `The checkouts with a stack run ${CALL_DEPTH} calls deep, so each capture takes its ${framesTaken} frames in full; the pool stands in (an idle client, nobody waits) and no runtime is installed, so the wait bookkeeping (pg section, about 75 ns) is not in it.`,
  ];
  return {
    markdown: `${markdown}\n\n${notes.join(' ')}`,
    figures: {
      rounds,
      historyNsPerCheckout: added,
      responseNs: stats(perResponse),
      connectionNs: stats(perConnection),
      ownedCheckoutNs: stats(perOwned),
      ownedCheckoutNoHistoryNs: stats(perOwnedNoHistory),
      stackCheckoutNs: stats(perStackCheckout),
      captureNs: stats(perCapture),
      captureFormattedNs: stats(perFormatted),
      stackFrames: framesTaken,
      formatsAtCheckout,
      sweepNs: stats(sweeps),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log((await run()).markdown);
