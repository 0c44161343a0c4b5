// A pg-backed server process for bench/pg.bench.mjs, started by lib/http-bench.mjs with fork(),
// with or without `--import dist/register.js`. Each request checks a client out of a pool, runs
// one parameterised query and releases the client in `finally`, as a typical handler does.
import http from 'node:http';
import { answerBench } from './bench-ipc.cjs';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.BENCH_PG_URL, max: 10 });
const server = http.createServer({ keepAliveTimeout: 60_000 }, async (req, res) => {
  const client = await pool.connect();
  try {
    const { rows } = await client.query('SELECT $1::int AS id, $2::text AS name', [42, 'widget']);
    const body = JSON.stringify(rows[0]);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } finally {
    client.release();
  }
});

answerBench(server, { close: () => pool.end() });
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
