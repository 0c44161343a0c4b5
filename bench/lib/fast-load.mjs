// A lighter load generator than load.mjs, for runs of many requests: raw keep-alive TCP sockets,
// one request in flight per socket (no pipelining), responses framed by Content-Length or chunked
// encoding. It spends a few µs of its own CPU per request where node:http's client spends tens, so
// on a 2-core machine it leaves the server a core. Same arguments and output as load.mjs:
//   node fast-load.mjs PORT PATH TOTAL CONCURRENCY  ->  {"durationMs","p50Ms","p99Ms"}
// With the environment variable LOAD_PATHS (comma-separated), request n goes to
// LOAD_PATHS[n % length] instead of PATH: a fixed mix of endpoints.
import net from 'node:net';

const [port, path, totalText, concurrencyText] = process.argv.slice(2);
const total = Number(totalText);
const concurrency = Math.min(Number(concurrencyText), total);
const paths = process.env.LOAD_PATHS ? process.env.LOAD_PATHS.split(',') : [path];
const requests = paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`, 'latin1'));
const latencies = new Float64Array(total);
let sent = 0;
let done = 0;
const started = performance.now();

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CHUNKED_END = Buffer.from('\r\n0\r\n\r\n', 'latin1');

function fail(message) {
  console.error(`fast-load: ${message}`);
  process.exit(1);
}

/** Length of the first complete response in `buf`, or -1 when more bytes are needed. */
function responseLength(buf) {
  const headerEnd = buf.indexOf(HEADER_END);
  if (headerEnd < 0) return -1;
  const head = buf.toString('latin1', 0, headerEnd).toLowerCase();
  if (!head.startsWith('http/1.1 200')) fail(`unexpected response: ${head.split('\r\n')[0]}`);
  const cl = head.indexOf('\r\ncontent-length:');
  if (cl >= 0) {
    const length = parseInt(head.slice(cl + 17), 10);
    const end = headerEnd + 4 + length;
    return buf.length >= end ? end : -1;
  }
  if (head.includes('\r\ntransfer-encoding: chunked')) {
    const end = buf.indexOf(CHUNKED_END, headerEnd + 2);
    return end < 0 ? -1 : end + CHUNKED_END.length;
  }
  return headerEnd + 4; // no body
}

function finish() {
  const durationMs = performance.now() - started;
  const sorted = latencies.sort();
  process.stdout.write(JSON.stringify({ durationMs, p50Ms: sorted[Math.floor(total * 0.5)], p99Ms: sorted[Math.floor(total * 0.99)] }));
  process.exit(0);
}

function connection() {
  const socket = net.connect({ host: '127.0.0.1', port: Number(port), noDelay: true });
  let pending = null;
  let index = -1;
  let t0 = 0;
  const next = () => {
    if (sent >= total) {
      socket.destroy();
      return;
    }
    index = sent++;
    t0 = performance.now();
    socket.write(requests[index % requests.length]);
  };
  socket.on('connect', next);
  socket.on('data', (chunk) => {
    pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
    const length = responseLength(pending);
    if (length < 0) return;
    if (length !== pending.length) fail('more bytes than one response: the server answered something unasked');
    pending = null;
    latencies[index] = performance.now() - t0;
    if (++done === total) finish();
    else next();
  });
  socket.on('error', (error) => fail(error.message));
  socket.on('close', () => {
    if (done < total && index >= 0 && pending !== null) fail('the server closed a connection mid-response');
  });
}

for (let i = 0; i < concurrency; i++) connection();
