// One measurement for compare-builds.mjs: CPU µs per pg checkout (connect, one query, release)
// inside a request's async context, with the leakwatch build at LEAKWATCH_ROOT, 10-frame stacks,
// and its metrics when METRICS=1. Prints {"us": N}.
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(process.env.LEAKWATCH_ROOT);
const require = createRequire(path.join(root, 'package.json'));
const pg = require('pg');
const { createMetrics, instrumentPg } = require(path.join(root, 'dist/index.js'));
const { ensureRuntime, responseContext } = require(path.join(root, 'dist/core/runtime.js'));

const probe = { progress: () => 0, method: () => 'GET', path: () => '/bench', route: () => null, endOverrides: () => [] };
ensureRuntime({ responseThreshold: '30s', connectionThreshold: '10s', log: () => {} });
instrumentPg(pg, { acquireStackFrames: 10 });
const metrics = process.env.METRICS === '1' ? createMetrics() : null;
const pool = new pg.Pool({ connectionString: process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test', max: 1 });
await pool.query('SELECT 1');
const response = ensureRuntime().ledger.openResponse({}, probe);
const checkouts = (n) =>
  responseContext.run(response, async () => {
    for (let i = 0; i < n; i++) {
      const client = await pool.connect();
      try {
        await client.query('SELECT $1::int AS n', [i]);
      } finally {
        client.release();
      }
    }
  });
await checkouts(Number(process.env.WARMUP ?? 500));
const n = Number(process.env.CHECKOUTS ?? 3000);
const before = process.cpuUsage();
await checkouts(n);
const used = process.cpuUsage(before);
process.stdout.write(`${JSON.stringify({ us: (used.user + used.system) / n })}\n`);
metrics?.close();
await pool.end();
