// The CPU cost of pg instrumentation: per checkout (connect + query + release) in-process, bare
// against instrumented with acquisition stacks off and on, through pg-pool and through knex (tarn);
// and per request on a pg-backed node:http endpoint, bare against leakwatch preloaded, with load
// from a separate process.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import pg from 'pg';
import { createMetrics, instrumentPg } from '../dist/index.js';
import { applyAll } from '../dist/core/patch.js';
import { mustWait, PendingCheckout } from '../dist/core/pool-waits.js';
import { instrumentKnexPgClient, instrumentKnexRunner, instrumentKnexTransaction } from '../dist/pools/knex.js';
import { instrumentTarnPool } from '../dist/pools/tarn.js';
import { ensureRuntime, resetRuntime, responseContext } from '../dist/core/runtime.js';
import { captureStack } from '../dist/core/stack.js';
import { compare, REGISTER } from './lib/http-bench.mjs';
import { median, spread, summary } from './lib/stats.mjs';

export const title = 'PostgreSQL (pg)';

const pgUrl = () => process.env.LEAKWATCH_TEST_PG_URL || process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const probe = { progress: () => 0, method: () => 'GET', path: () => '/bench', route: () => null, endOverrides: () => [] };

let undoPg = null;
let metrics = null;
const require = createRequire(import.meta.url);

/** pg with the pool libraries knex uses: pg, tarn and knex's postgres client, transaction and runner. */
function instrumentAll(frames) {
  return applyAll([
    () => instrumentPg(pg, { acquireStackFrames: frames }),
    () => instrumentTarnPool(require('tarn').Pool),
    () => instrumentKnexPgClient(require('knex/lib/dialects/postgres/index.js')),
    () => instrumentKnexTransaction(require('knex/lib/execution/transaction.js')),
    () => instrumentKnexRunner(require('knex/lib/execution/runner.js')),
  ]);
}

/** Puts pg in one mode: bare, or instrumented with `frames` acquisition stack frames, and with leakwatch's metrics when `metrics`. */
function setMode(mode) {
  undoPg?.(); // whatever was there is undone first
  undoPg = null;
  metrics?.close();
  metrics = null;
  if (mode.frames === null) return;
  resetRuntime();
  ensureRuntime({ responseThreshold: '30s', connectionThreshold: '10s', log: () => {} });
  undoPg = instrumentAll(mode.frames);
  if (mode.metrics) metrics = createMetrics();
}

async function checkouts(pool, n) {
  for (let i = 0; i < n; i++) {
    const client = await pool.connect();
    try {
      await client.query('SELECT $1::int AS n', [i]);
    } finally {
      client.release();
    }
  }
}

/** CPU µs per checkout, each made inside a request's context as a handler would. */
async function measureCheckouts(pool, mode, n, warmup) {
  setMode(mode);
  const runtime = ensureRuntime();
  const response = runtime.ledger.openResponse({}, probe);
  const run = (count) => responseContext.run(response, () => checkouts(pool, count));
  await run(warmup);
  const before = process.cpuUsage();
  await run(n);
  const used = process.cpuUsage(before);
  runtime.ledger.closeResponse(response, 'finished');
  return (used.user + used.system) / n;
}

async function checkoutSection({ log, rounds, checkoutsPerRound, warmup }) {
  const modes = {
    bare: { frames: null },
    'instrumented, stacks off (0 frames)': { frames: 0 },
    'instrumented, stacks on (10 frames)': { frames: 10 },
    'instrumented, stacks on (20 frames)': { frames: 20 },
    'instrumented, stacks on (10 frames), metrics': { frames: 10, metrics: true },
  };
  const names = Object.keys(modes);
  const figures = Object.fromEntries(names.map((name) => [name, []]));
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
  await pool.query('SELECT 1');
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so drift in the machine's speed does not favour one mode.
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const us = await measureCheckouts(pool, modes[name], checkoutsPerRound, warmup);
      figures[name].push(us);
      log?.(`  checkout round ${round + 1}/${rounds} ${name}: ${us.toFixed(1)} µs CPU/checkout`);
    }
  }
  setMode({ frames: null });
  instrumentPg(pg)();
  await pool.end();
  const bare = figures.bare;
  const lines = [
    `In-process CPU (user+system, \`process.cpuUsage()\`) per checkout: \`pool.connect()\`, one parameterised query, \`release()\`, inside a request's async context (AsyncLocalStorage is active in every mode); one pooled client, ${checkoutsPerRound} checkouts per measurement after ${warmup} warm-up; ${rounds} rounds, modes in rotating order. Median (min–max). Added is the median over rounds of (mode − bare) in the same round.`,
    '',
    '| mode | CPU µs/checkout | added µs/checkout |',
    '| --- | --- | --- |',
  ];
  for (const name of names) {
    const added = figures[name].map((us, i) => us - bare[i]);
    lines.push(`| ${name} | ${summary(figures[name])} | ${name === 'bare' ? '—' : summary(added)} |`);
  }
  return { lines, figures };
}

/**
 * The acquisition stack's capture timed where it runs: `Error.captureStackTrace` wrapped with a
 * timer while real checkouts run (instrumented, 10 frames), against the same capture in a hot loop.
 * The per-round differences above mix it with each round's noise; this times the call itself.
 */
async function captureSection({ log, count, warmup }) {
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 1 });
  await pool.query('SELECT 1');
  const original = Error.captureStackTrace;
  const timings = [];
  let timing = false;
  Error.captureStackTrace = function timedCapture(target, below) {
    if (!timing) return original(target, below);
    const started = process.hrtime.bigint();
    original(target, below);
    timings.push(Number(process.hrtime.bigint() - started));
  };
  try {
    setMode({ frames: 10 });
    const runtime = ensureRuntime();
    const response = runtime.ledger.openResponse({}, probe);
    await responseContext.run(response, () => checkouts(pool, warmup));
    timing = true;
    await responseContext.run(response, () => checkouts(pool, count));
    timing = false;
    runtime.ledger.closeResponse(response, 'finished');
    const inCheckouts = timings.splice(0);
    // leakwatch's same capture (10 frames, below its caller) from an async loop that does nothing else.
    const capture = () => captureStack(10, capture);
    for (let i = 0; i < warmup * 4; i++) {
      await null;
      capture();
    }
    timing = true;
    for (let i = 0; i < inCheckouts.length; i++) {
      await null;
      capture();
    }
    timing = false;
    const hot = timings.splice(0);
    log?.(`  capture timing: ${median(inCheckouts).toFixed(0)} ns in checkouts, ${median(hot).toFixed(0)} ns in a hot loop`);
    return { inCheckouts, hot };
  } finally {
    Error.captureStackTrace = original;
    setMode({ frames: null });
    await pool.end();
  }
}

/** knex's two kinds of checkout: a query (knex releases it itself) and a transaction the app holds. */
const KNEX_WORKLOADS = {
  'query (`await knex.raw(...)`)': (knex, i) => knex.raw('select ?::int as n', [i]),
  'transaction (`knex.transaction(trx => ...)`: BEGIN, query, COMMIT)': (knex, i) => knex.transaction((trx) => trx.raw('select ?::int as n', [i])),
};

async function measureKnex(knex, workload, mode, n, warmup) {
  setMode(mode);
  const runtime = ensureRuntime();
  const response = runtime.ledger.openResponse({}, probe);
  const run = (count) =>
    responseContext.run(response, async () => {
      for (let i = 0; i < count; i++) await workload(knex, i);
    });
  await run(warmup);
  const before = process.cpuUsage();
  await run(n);
  const used = process.cpuUsage(before);
  runtime.ledger.closeResponse(response, 'finished');
  return (used.user + used.system) / n;
}

async function knexSection({ log, rounds, checkoutsPerRound, warmup }) {
  const modes = { bare: { frames: null }, 'instrumented, stacks off (0 frames)': { frames: 0 }, 'instrumented, stacks on (10 frames)': { frames: 10 } };
  const names = Object.keys(modes);
  const knex = knexFactory({ client: 'pg', connection: pgUrl(), pool: { min: 1, max: 1 } });
  await knex.raw('select 1');
  const lines = [
    `In-process CPU per checkout through knex ${require('knex/package.json').version} (tarn pool of one pg client), inside a request's async context; ${checkoutsPerRound} checkouts per measurement after ${warmup} warm-up; ${rounds} rounds, modes in rotating order. Median (min–max); added is the median over rounds of (mode − bare) in the same round. A knex query releases its own connection, so no acquisition stack is captured for it; a transaction's stack is captured at \`knex.transaction()\`, where the app's line is.`,
    '',
    '| workload | mode | CPU µs/checkout | added µs/checkout |',
    '| --- | --- | --- | --- |',
  ];
  const figures = {};
  for (const [workloadName, workload] of Object.entries(KNEX_WORKLOADS)) {
    const byMode = Object.fromEntries(names.map((name) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length];
        const us = await measureKnex(knex, workload, modes[name], checkoutsPerRound, warmup);
        byMode[name].push(us);
        log?.(`  knex ${workloadName.split(' ')[0]} round ${round + 1}/${rounds} ${name}: ${us.toFixed(1)} µs CPU/checkout`);
      }
    }
    for (const name of names) {
      const added = byMode[name].map((us, i) => us - byMode.bare[i]);
      lines.push(`| ${workloadName} | ${name} | ${summary(byMode[name])} | ${name === 'bare' ? '—' : summary(added)} |`);
    }
    figures[workloadName] = byMode;
  }
  setMode({ frames: null });
  await knex.destroy();
  return { lines, figures };
}

/**
 * What a checkout's wait adds to it, on the real functions in a loop without I/O: the time it is
 * asked at, the pool's counts read once (does it have to wait?), and its wait heard when it is
 * served, against the checkout object alone, which the checkout made before; and with metrics, the
 * wait histogram's observation.
 */
async function waitSection({ log, rounds, iterations }) {
  setMode({ frames: 10 });
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 2, leakwatchName: 'bench-waits' });
  const client = await pool.connect(); // named, and one idle connection: nobody waits
  client.release();
  const watch = pool[Symbol.for('leakwatch.pg.poolWatch.v1')];
  const { waits } = ensureRuntime();
  const alone = (n) => {
    let made = 0;
    for (let i = 0; i < n; i++) if (new PendingCheckout(undefined, null, i).requestedAt === i) made++;
    return made;
  };
  const waited = (n) => {
    for (let i = 0; i < n; i++) {
      const checkout = new PendingCheckout(undefined, null, waits.now());
      if (mustWait(watch.counts())) waits.waiting(watch, checkout);
      waits.served(watch, checkout, checkout.requestedAt);
    }
    return n;
  };
  const modes = { 'the checkout object alone': [alone, false], 'with its wait recorded': [waited, false], 'with its wait recorded, metrics on': [waited, true] };
  const figures = Object.fromEntries(Object.keys(modes).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, [loop, withMetrics]] of Object.entries(modes)) {
      const own = withMetrics ? createMetrics() : null;
      loop(iterations / 10);
      const start = process.hrtime.bigint();
      loop(iterations);
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      own?.close();
      figures[name].push(ns);
      log?.(`  wait round ${round + 1}/${rounds} ${name}: ${ns.toFixed(0)} ns/checkout`);
    }
  }
  await pool.end();
  setMode({ frames: null });
  const alone0 = figures['the checkout object alone'];
  const lines = [
    `Wall time per checkout of the wait bookkeeping alone, on the real functions (\`PoolWaits\`, the pg-pool watch's counts), ${iterations} checkouts per measurement after ${iterations / 10} warm-up, ${rounds} rounds; no I/O, no pool: served at once, as nearly every checkout is. Median (min–max); added is against the checkout object alone, which the checkout made before.`,
    '',
    '| mode | ns/checkout | added ns/checkout |',
    '| --- | --- | --- |',
  ];
  for (const name of Object.keys(modes)) {
    lines.push(`| ${name} | ${summary(figures[name], 0)} | ${name === 'the checkout object alone' ? '—' : summary(figures[name].map((ns, i) => ns - alone0[i]), 0)} |`);
  }
  return { lines, figures };
}

async function requestSection({ log, rounds, requests, warmup }) {
  const env = { BENCH_PG_URL: pgUrl() };
  const modes = {
    bare: { execArgv: [], env },
    'leakwatch, stacks off (0 frames)': { execArgv: ['--import', REGISTER], env: { ...env, LEAKWATCH_RESPONSE_THRESHOLD: '30s', LEAKWATCH_ACQUIRE_STACK_FRAMES: '0' } },
    'leakwatch, stacks on (10 frames)': { execArgv: ['--import', REGISTER], env: { ...env, LEAKWATCH_RESPONSE_THRESHOLD: '30s', LEAKWATCH_ACQUIRE_STACK_FRAMES: '10' } },
  };
  const script = fileURLToPath(new URL('./lib/pg-server.mjs', import.meta.url));
  const results = await compare({ modes, app: 'pg', script, path: '/items/42', rounds, requests, warmup, log });
  const lines = [
    `Server CPU (user+system) per request on a node:http endpoint that checks out a client, runs one query and releases it in \`finally\` (pool max 10), measured in the server process while a separate load process sends ${requests} keep-alive requests (16 in flight) after ${warmup} warm-up; ${rounds} alternating rounds, a fresh server each. leakwatch is preloaded with \`--import leakwatch/register\` (node:http and pg). Median (min–max).`,
    '',
    '| mode | CPU µs/req | added µs/req | req/s | p99 ms |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const name of Object.keys(modes)) {
    const cpu = results[name].map((f) => f.cpuUsPerRequest);
    const added = cpu.map((us, i) => us - results.bare[i].cpuUsPerRequest);
    lines.push(
      `| ${name} | ${summary(cpu)} | ${name === 'bare' ? '—' : summary(added)} | ${summary(results[name].map((f) => f.requestsPerSecond), 0)} | ${summary(results[name].map((f) => f.p99Ms), 2)} |`,
    );
  }
  return { lines, results };
}

/** What the two capture timings say, in words that hold for the figures of this run. */
function captureNote({ inCheckouts, hot }) {
  const ratio = median(inCheckouts) / median(hot);
  if (ratio < 1.3) return ': about what a microbenchmark of it gives';
  return `: ${ratio.toFixed(1)} times the hot loop's: the same call, run between a query's I/O rather than over and over, so a microbenchmark of the capture understates what it costs a real checkout`;
}

export async function run({ log, rounds = 7, checkoutsPerRound = 3_000, checkoutWarmup = 500, requests = 8_000, requestWarmup = 1_500, waitIterations = 500_000 } = {}) {
  const checkout = await checkoutSection({ log, rounds, checkoutsPerRound, warmup: checkoutWarmup });
  const waits = await waitSection({ log, rounds, iterations: waitIterations });
  const knex = await knexSection({ log, rounds, checkoutsPerRound: Math.round(checkoutsPerRound / 2), warmup: checkoutWarmup });
  const perRequest = await requestSection({ log, rounds: Math.max(5, rounds), requests, warmup: requestWarmup });
  const capture = await captureSection({ log, count: checkoutsPerRound, warmup: checkoutWarmup });
  const stackCost = median(checkout.figures['instrumented, stacks on (10 frames)'].map((us, i) => us - checkout.figures['instrumented, stacks off (0 frames)'][i]));
  return [
    `### ${title}`,
    '',
    '#### Per checkout',
    '',
    ...checkout.lines,
    '',
    `Capturing a 10-frame acquisition stack adds ${stackCost.toFixed(1)} µs per checkout (median of per-round differences); it is formatted only when a leak is reported. Timed directly (\`Error.captureStackTrace\` wrapped with a timer over ${capture.inCheckouts.length} checkouts, 10 frames), the capture takes ${spread(capture.inCheckouts, 0)} ns per checkout, against ${spread(capture.hot, 0)} ns for the same capture in a loop that does nothing else (median, 25th–75th percentile; the timer's own cost is in both)${captureNote(capture)}. With metrics, each checkout is observed in two histograms (its wait when served, its use time when released).`,
    '',
    '#### What a checkout\'s wait adds',
    '',
    ...waits.lines,
    '',
    '#### Per checkout through knex',
    '',
    ...knex.lines,
    '',
    '#### Per request',
    '',
    ...perRequest.lines,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await run({ log: (line) => process.stderr.write(line + '\n') }));
}
