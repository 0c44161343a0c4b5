// A server process for the HTTP benchmarks. Started by lib/http-bench.mjs with fork(); with or
// without `--import dist/register.js` in its execArgv. BENCH_APP picks the endpoint.
import http from 'node:http';
import { answerBench } from './bench-ipc.cjs';

const app = process.env.BENCH_APP ?? 'hello';
const payload = { id: 42, name: 'widget', tags: ['a', 'b', 'c'], price: 19.99, stock: { warehouse: 'north', count: 1200 } };

const handlers = {
  hello: (req, res) => res.end('hello world'),
  json: (req, res) => {
    const body = JSON.stringify({ ...payload, path: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  },
  // A middleware that replaces res.end on every request and calls through, as compression and
  // express-session do: the case where res.end attribution does work.
  'replaced-end': (req, res) => {
    const end = res.end;
    res.end = function (chunk, encoding, cb) {
      return end.call(this, chunk, encoding, cb);
    };
    res.end('hello world');
  },
};

const handler = handlers[app];
if (!handler) throw new Error(`unknown BENCH_APP ${app}`);
const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
answerBench(server);
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
