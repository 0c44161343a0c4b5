// A load process that stays up for a whole comparison (lib/http-bench.mjs's compareSideBySide):
// the bench sends it {burst: [{name, port, path, requests, concurrency}, …]} over fork() IPC, it sends
// each server its requests, all servers at once, on raw keep-alive sockets, one request in flight
// per socket as fast-load.mjs does, and answers one {durationMs, p50Ms, p99Ms} per server. Its
// sockets to each server stay open between bursts, so a burst is only requests: no process start
// and no connection set-up in a server's measured CPU (but for a connection the server closed
// while it was idle, opened again and said so: see KeptAlive). A server that answers nothing for
// a minute (BENCH_STALL_MS) fails the burst with its name and how far it got, rather than leaving
// the bench to the caller's timeout without saying which server stopped answering.
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

/**
 * One keep-alive socket to a server; `send(bytes)` resolves when one whole response is back.
 * `closedIdleMs` is how long it had been idle when the server closed it between two requests
 * (null while it is open, or when it closed with a request out, which fails that request).
 */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let pending = null;
    let waiter = null;
    let idleSince = performance.now();
    let closedIdleMs = null;
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
      idleSince = performance.now();
      const w = waiter;
      waiter = null;
      w?.resolve();
    });
    socket.on('error', (error) => {
      fail(error);
      reject(error);
    });
    // Ended by the server ('end' comes before 'close', and a write in between fails).
    const closedByServer = () => {
      if (waiter === null) closedIdleMs ??= performance.now() - idleSince;
      fail(new Error('the server closed a connection with a request out'));
    };
    socket.on('end', closedByServer);
    socket.on('close', closedByServer);
    socket.once('connect', () =>
      resolve({
        get closedIdleMs() {
          return closedIdleMs;
        },
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

/**
 * A kept-alive connection that a server closed between two requests is opened again before the
 * next, as an HTTP client's agent does (a write to it would wait forever), and the driver says so
 * on stderr with how long it had been idle: a server of the bench keeps idle connections for 60 s,
 * so an earlier close is news. The new connection's set-up falls in the server's measured CPU, once.
 */
class KeptAlive {
  constructor(port, name) {
    this.port = port;
    this.name = name;
    this.connection = null;
  }

  async open() {
    this.connection = await connect(this.port);
    return this;
  }

  async send(bytes) {
    const idleMs = this.connection.closedIdleMs;
    if (idleMs !== null) {
      process.stderr.write(`load driver: ${this.name} (port ${this.port}) closed a kept-alive connection after ${(idleMs / 1000).toFixed(1)} s idle; opened another\n`);
      this.connection = await connect(this.port);
    }
    return this.connection.send(bytes);
  }

  close() {
    this.connection?.close();
  }
}

const pools = new Map(); // port -> sockets

async function socketsFor(port, concurrency, name) {
  let sockets = pools.get(port);
  if (sockets === undefined) pools.set(port, (sockets = []));
  while (sockets.length < concurrency) sockets.push(await new KeptAlive(port, name).open());
  return sockets.slice(0, concurrency);
}

/** How long a burst may go without any answer from a server before it fails, naming that server. */
const STALL_MS = Number(process.env.BENCH_STALL_MS) || 60_000;

async function burst({ port, path, requests, concurrency, name = `port ${port}` }) {
  const bytes = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`, 'latin1');
  const sockets = await socketsFor(port, Math.min(concurrency, requests), name);
  const latencies = new Float64Array(requests);
  let sent = 0;
  let answered = 0;
  let lastAnswer = performance.now();
  const started = performance.now();
  let watchdog;
  const stalled = new Promise((resolve, reject) => {
    watchdog = setInterval(() => {
      const quiet = performance.now() - lastAnswer;
      if (quiet < STALL_MS) return;
      reject(new Error(`${name} (port ${port}, ${path}) answered nothing for ${(quiet / 1000).toFixed(0)} s: ${answered} of ${requests} requests answered, ${sent - answered} sent and unanswered`));
    }, Math.min(STALL_MS, 5_000));
  });
  const sending = Promise.all(
    sockets.map(async (socket) => {
      while (sent < requests) {
        const index = sent++;
        const t0 = performance.now();
        await socket.send(bytes);
        lastAnswer = performance.now();
        answered++;
        latencies[index] = lastAnswer - t0;
      }
    }),
  );
  sending.catch(() => {}); // raced below; a failure after a stall was reported is not news
  try {
    await Promise.race([sending, stalled]);
  } finally {
    clearInterval(watchdog);
  }
  const durationMs = performance.now() - started;
  latencies.sort();
  return { durationMs, p50Ms: latencies[Math.floor(requests * 0.5)], p99Ms: latencies[Math.floor(requests * 0.99)] };
}

process.on('message', (message) => {
  if (message === 'exit') {
    for (const sockets of pools.values()) for (const s of sockets) s.close();
    process.exit(0);
  }
  if (message.forget !== undefined) {
    // Those servers are stopping: the next server given one of their ports (the system hands out
    // ports again) must get connections of its own, not theirs, which its predecessor closed.
    for (const port of message.forget) {
      for (const s of pools.get(port) ?? []) s.close();
      pools.delete(port);
    }
    return;
  }
  Promise.all(message.burst.map((target) => burst(target))).then(
    (figures) => process.send({ figures }),
    (error) => process.send({ error: String(error?.stack ?? error) }),
  );
});
process.send({ ready: true });
