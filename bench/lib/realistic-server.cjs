// A server process for bench/realistic.bench.mjs, bench/memory.bench.mjs and
// bench/detection.bench.mjs, started by lib/http-bench.mjs with fork(): bare, with
// `--import dist/register.js` (leakwatch), or with `--require lib/otel.cjs` (OpenTelemetry).
// CommonJS, so that OpenTelemetry's require hooks see express, pg and ioredis load, as in an app.
//
// BENCH_APP picks the endpoints:
//   realistic  Express 5: GET /items/:id runs one pg query (pool.query on a pool of 10) and one
//              Redis GET on a shared client, then res.json().
//   hello      node:http hello world, the worst case for relative overhead.
//   mixed      node:http: /items/... as realistic does it (pg query + Redis GET), anything else
//              hello world; /stall never answers and writes nothing (a leak).
// Every endpoint replaces res.end on each request and calls through, as compression and
// express-session do, so res.end attribution does its per-request work in every mode that has it.
//
// Messages from the parent: 'start'/'stop' (CPU used in between), 'heap' (heap after a full GC
// with --expose-gc, and leakwatch's ledger totals), 'memory' (the young generation's size, the
// heap's and RSS, as they are), 'exit'.
'use strict';
const http = require('node:http');
const { answerBench } = require('./bench-ipc.cjs');

const app = process.env.BENCH_APP || 'realistic';

function replaceEnd(res) {
  const end = res.end;
  res.end = function (chunk, encoding, cb) {
    return end.call(this, chunk, encoding, cb);
  };
}

const hello = (req, res) => {
  replaceEnd(res);
  res.end('hello world');
};

let close = async () => {};
let ready = null;

/** pg and Redis clients made at start-up, outside any request, as an app does. */
function services() {
  const pg = require('pg');
  const Redis = require('ioredis');
  const pool = new pg.Pool({ connectionString: process.env.BENCH_PG_URL, max: 10 });
  const redis = new Redis(process.env.BENCH_REDIS_URL);
  close = async () => {
    await pool.end();
    redis.disconnect();
  };
  ready = Promise.all([pool.query('SELECT 1'), redis.set('bench:stock:42', '1200')]);
  return { pool, redis };
}

let handler;
if (app === 'hello') {
  handler = hello;
} else if (app === 'realistic') {
  const express = require('express');
  const { pool, redis } = services();
  const web = express();
  web.disable('x-powered-by');
  web.use((req, res, next) => {
    replaceEnd(res);
    next();
  });
  web.get('/items/:id', async (req, res) => {
    const id = Number(req.params.id);
    const { rows } = await pool.query('SELECT $1::int AS id, $2::text AS name', [id, 'widget']);
    const stock = await redis.get(`bench:stock:${id}`);
    res.json({ ...rows[0], stock: Number(stock) });
  });
  handler = web;
} else if (app === 'mixed') {
  const { pool, redis } = services();
  handler = (req, res) => {
    if (req.url.startsWith('/stall')) {
      stallStarts.set(res, performance.timeOrigin + performance.now());
      return; // never answers and writes nothing: a leak once the response threshold passes
    }
    if (!req.url.startsWith('/items/')) return hello(req, res);
    replaceEnd(res);
    const id = 42;
    pool
      .query('SELECT $1::int AS id, $2::text AS name', [id, 'widget'])
      .then(async ({ rows }) => {
        const stock = await redis.get(`bench:stock:${id}`);
        const body = JSON.stringify({ ...rows[0], stock: Number(stock) });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      })
      .catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
  };
} else {
  throw new Error(`unknown BENCH_APP ${app}`);
}

// With BENCH_OBSERVE_LEAKS: when leakwatch reports each /stall response leaked, against when it
// started (taken in the handler, sub-millisecond), through the ledger's observer.
const stallStarts = new WeakMap();
const leakDetections = [];
if (process.env.BENCH_OBSERVE_LEAKS) {
  globalThis[Symbol.for('leakwatch.process.v2')].get('runtime').runtime.ledger.observe({
    responseLeaked(response) {
      const detectedAt = performance.timeOrigin + performance.now();
      const startedAt = response.target === null ? undefined : stallStarts.get(response.target);
      if (startedAt !== undefined) leakDetections.push({ startedAt, detectedAt, ledgerStartedAt: response.startedAt, ledgerDetectedAt: response.leak.detectedAt, dateNow: Date.now(), reason: response.leak.reason });
    },
  });
}

/** leakwatch's ledger in this process, if leakwatch is preloaded. */
function ledgerFigures() {
  const runtime = globalThis[Symbol.for('leakwatch.process.v2')].get('runtime').runtime;
  if (runtime === undefined) return null;
  const { ledger } = runtime;
  return { totals: { ...ledger.totals }, openResponses: ledger.openResponses, heldConnections: ledger.held.size, keptLeaks: ledger.leaks.length };
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
answerBench(server, {
  close,
  extra: {
    heap() {
      // With --expose-gc: full collections first, so only what is reachable is counted.
      if (typeof global.gc === 'function') for (let i = 0; i < 3; i++) global.gc();
      const { heapUsed, rss } = process.memoryUsage();
      return { heapUsed, rss, ledger: ledgerFigures() };
    },
    leaks: () => ({ leaks: leakDetections }),
    // No collection first: V8's young generation as the load left it (bench/young-generation.mjs).
    memory() {
      const newSpace = require('node:v8').getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
      const { heapTotal, rss } = process.memoryUsage();
      return { memory: { newSpace: newSpace === undefined ? null : newSpace.space_size, heapTotal, rss } };
    },
  },
});
Promise.resolve(ready).then(
  () => server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port })),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
