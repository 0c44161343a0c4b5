// A load process that stays up for a whole comparison (lib/http-bench.mjs's compareSideBySide):
// the bench sends it {burst: [{port, path, requests, concurrency}, …]} over fork() IPC, it sends
// each server its requests, all servers at once, on raw keep-alive sockets, one request in flight
// per socket as fast-load.mjs does, and answers one {durationMs, p50Ms, p99Ms} per server. Its
// sockets to each server stay open between bursts, so a burst is only requests: no process start
// and no connection set-up in a server's measured CPU.
import net from 'node:net';

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CHUNKED_END = Buffer.from('\r\n0\r\n\r\n', 'latin1');

/** Length of the first complete response in `buf`, or -1 when more bytes are needed. */
function responseLength(buf) {
  const headerEnd = buf.indexOf(HEADER_END);
  if (headerEnd < 0) return -1;
  const head = buf.toString('latin1', 0, headerEnd).toLowerCase();
  if (!head.startsWith('http/1.1 200')) throw new Error(`unexpected response: ${head.split('\r\n')[0]}`);
  const cl = head.indexOf('\r\ncontent-length:');
  if (cl >= 0) {
    const end = headerEnd + 4 + parseInt(head.slice(cl + 17), 10);
    return buf.length >= end ? end : -1;
  }
  if (head.includes('\r\ntransfer-encoding: chunked')) {
    const end = buf.indexOf(CHUNKED_END, headerEnd + 2);
    return end < 0 ? -1 : end + CHUNKED_END.length;
  }
  return headerEnd + 4;
}

/** One keep-alive socket to a server; `send(bytes)` resolves when one whole response is back. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let pending = null;
    let waiter = null;
    const fail = (error) => {
      if (waiter !== null) waiter.reject(error);
      waiter = null;
    };
    socket.on('data', (chunk) => {
      pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
      let length;
      try {
        length = responseLength(pending);
      } catch (error) {
        fail(error);
        return;
      }
      if (length < 0) return;
      if (length !== pending.length) return fail(new Error('more bytes than one response: the server answered something unasked'));
      pending = null;
      const w = waiter;
      waiter = null;
      w?.resolve();
    });
    socket.on('error', (error) => {
      fail(error);
      reject(error);
    });
    socket.on('close', () => fail(new Error('the server closed a connection')));
    socket.once('connect', () =>
      resolve({
        send(bytes) {
          return new Promise((res, rej) => {
            waiter = { resolve: res, reject: rej };
            socket.write(bytes);
          });
        },
        close: () => socket.destroy(),
      }),
    );
  });
}

const pools = new Map(); // port -> sockets

async function socketsFor(port, concurrency) {
  let sockets = pools.get(port);
  if (sockets === undefined) pools.set(port, (sockets = []));
  while (sockets.length < concurrency) sockets.push(await connect(port));
  return sockets.slice(0, concurrency);
}

async function burst({ port, path, requests, concurrency }) {
  const bytes = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`, 'latin1');
  const sockets = await socketsFor(port, Math.min(concurrency, requests));
  const latencies = new Float64Array(requests);
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    sockets.map(async (socket) => {
      while (sent < requests) {
        const index = sent++;
        const t0 = performance.now();
        await socket.send(bytes);
        latencies[index] = performance.now() - t0;
      }
    }),
  );
  const durationMs = performance.now() - started;
  latencies.sort();
  return { durationMs, p50Ms: latencies[Math.floor(requests * 0.5)], p99Ms: latencies[Math.floor(requests * 0.99)] };
}

process.on('message', (message) => {
  if (message === 'exit') {
    for (const sockets of pools.values()) for (const s of sockets) s.close();
    process.exit(0);
  }
  Promise.all(message.burst.map((target) => burst(target))).then(
    (figures) => process.send({ figures }),
    (error) => process.send({ error: String(error?.stack ?? error) }),
  );
});
process.send({ ready: true });
