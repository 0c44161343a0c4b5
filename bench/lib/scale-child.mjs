// Child process of bench/scale.bench.mjs (run with --expose-gc): 100,000 open responses at once,
// in-process. Prints one JSON line.
//
// The responses are real node:http ServerResponse objects (over IncomingMessage objects, with no
// socket: 100,000 real sockets would need 200,000 descriptors and more memory and time than this
// 2-core machine has for a benchmark), followed through leakwatch's own node:http path
// (trackResponse: a ResponseRecord in the ledger's deadline queue, the Symbol on the response,
// its 'close' listener).
import http from 'node:http';
import net from 'node:net';
import { Ledger } from '../../dist/core/ledger.js';
import { ensureRuntime } from '../../dist/core/runtime.js';
import { nodeResponseProbe, trackResponse } from '../../dist/http/node-http.js';

const OPEN = Number(process.env.SCALE_OPEN ?? 100_000);
const socket = new net.Socket();

function newResponse(i) {
  const req = new http.IncomingMessage(socket);
  req.method = 'GET';
  req.url = `/items/${i}?q=1`;
  return new http.ServerResponse(req);
}

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** Mean ns per call of fn over n calls, best of `rounds`. */
function time(fn, n, rounds = 7) {
  const each = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    each.push(Number(process.hrtime.bigint() - t0) / n);
  }
  each.sort((a, b) => a - b);
  return { median: each[each.length >> 1], min: each[0], max: each.at(-1) };
}

// ---- memory per open response, through the real node:http tracking path ----
const runtime = ensureRuntime({ responseThreshold: '30s', log: () => {} });
const responses = Array.from({ length: OPEN }, (_, i) => newResponse(i));
const before = heap();
for (const res of responses) trackResponse(res);
const after = heap();
const open = runtime.ledger.openResponses;
const bytesPerOpen = (after - before) / OPEN;

// ---- one deadline sweep with nothing due, as the timer runs it, against the number open ----
const sweeps = {};
for (const n of [1_000, 10_000, OPEN]) {
  let now = 0;
  const ledger = new Ledger({ responseThresholdMs: 30_000, connectionThresholdMs: 10_000, maxReportedLeaks: 1000, onFailure: () => {}, currentResponse: () => undefined, clock: () => now, timer: false });
  for (let i = 0; i < n; i++) {
    now = Math.floor((i * 1000) / n); // start times spread over a second, in order, as real traffic comes
    ledger.openResponse(responses[i], nodeResponseProbe);
  }
  now = 29_000; // nothing due before 30 s
  time(() => ledger.sweep(now), 100_000, 2); // warm-up: optimized code, as a long-running process has
  sweeps[n] = time(() => ledger.sweep(now), 100_000);
}

// ---- a sweep that finds what is due: the cost is per item due, not per item open ----
let now = 0;
const ledger = new Ledger({ responseThresholdMs: 30_000, connectionThresholdMs: 10_000, maxReportedLeaks: 1000, onFailure: () => {}, currentResponse: () => undefined, clock: () => now, timer: false });
for (let i = 0; i < OPEN; i++) {
  now = Math.floor(i / 100); // 100 responses per millisecond
  ledger.openResponse(responses[i], nodeResponseProbe);
}
now = 30_009; // the first 1,000 are due; each is stalled, so each becomes a leak
const t0 = process.hrtime.bigint();
ledger.sweep(now);
const dueSweepNs = Number(process.hrtime.bigint() - t0);
const dueFound = ledger.totals.leakedResponses;

process.stdout.write(JSON.stringify({ open, bytesPerOpen, beforeMb: before / 2 ** 20, afterMb: after / 2 ** 20, sweeps, dueSweepNs, dueFound }) + '\n');
process.exit(0);
