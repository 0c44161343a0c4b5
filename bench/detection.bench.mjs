// Detection latency: how long after a leak becomes true leakwatch reports it. A response that
// stalls (writes nothing, owns no busy connection) from t0 becomes a leak at t0 + threshold;
// δ is the time after that until (a) the ledger's observer is told, which is also when
// leakwatch_http_server_leaked_responses_total is incremented, and (b) a Prometheus-style
// scraper polling /metrics sees the counter move.
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { FAST_LOAD, freePort, REGISTER, request, sendLoad, servicesEnv, startServer, stopServer } from './lib/http-bench.mjs';
import { median } from './lib/stats.mjs';

export const title = 'Detection latency';

const script = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const COUNTER = 'leakwatch_http_server_leaked_responses_total';
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The sum of the leaked-responses counter over its label sets, or null when not served yet. */
function scrape(port, agent) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        let sum = 0;
        for (const line of body.split('\n')) {
          if (line.startsWith(COUNTER + '{') || line.startsWith(COUNTER + ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        resolve(sum);
      });
    });
    req.on('error', () => resolve(null));
  });
}

/** A request for `path` on its own socket, never read: the server sees a client that waits. */
function stall(port, path) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, () => resolve({ socket, sentAt: now() }));
    });
    socket.on('error', reject);
  });
}

export async function run({ log, thresholdMs = 500, stalls = 20, staggerMs = 53, pollMs = 10 } = {}) {
  const env = {
    ...servicesEnv(),
    LEAKWATCH_RESPONSE_THRESHOLD: `${thresholdMs}ms`,
    LEAKWATCH_METRICS_PORT: String(await freePort()),
    BENCH_OBSERVE_LEAKS: '1',
  };
  const metricsPort = Number(env.LEAKWATCH_METRICS_PORT);
  const { child, port } = await startServer({ mode: { execArgv: ['--import', REGISTER], env }, app: 'mixed', script });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while ((await scrape(metricsPort, agent)) === null) await sleep(20);

  // Background traffic all along: hello world, with one request in 20 to pg + Redis.
  const paths = Array.from({ length: 20 }, (_, i) => (i === 0 ? '/items/42' : `/hello?n=${i}`));
  const background = sendLoad({ port, path: '/', requests: 30_000, concurrency: 4, loader: FAST_LOAD, env: { LOAD_PATHS: paths.join(',') } });

  const polls = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const value = await scrape(metricsPort, agent);
      polls.push({ at: now(), value });
      await sleep(pollMs);
    }
  })();

  const sent = [];
  for (let i = 0; i < stalls; i++) {
    sent.push(await stall(port, `/stall/${i}`));
    await sleep(staggerMs);
  }
  const deadline = now() + thresholdMs + 3000;
  while (now() < deadline && (polls.at(-1)?.value ?? 0) < stalls) await sleep(pollMs);
  polling = false;
  await poller;
  const { leaks } = await request(child, 'leaks', 'leaks');
  for (const { socket } of sent) socket.destroy();
  agent.destroy();
  await background;
  await stopServer(child);

  // Monotonic: performance clock at the handler and at the observer. Ledger clock: Date.now(), what
  // leakwatch schedules by (whole milliseconds; start times are truncated, so up to 1 ms more).
  const observed = leaks.map((l) => l.detectedAt - (l.startedAt + thresholdMs)).sort((a, b) => a - b);
  const byLedgerClock = leaks.map((l) => l.dateNow - (l.ledgerStartedAt + thresholdMs)).sort((a, b) => a - b);
  const scraped = sent
    .map(({ sentAt }, k) => {
      const seen = polls.find((p) => p.value !== null && p.value >= k + 1);
      return seen === undefined ? null : seen.at - (sentAt + thresholdMs);
    })
    .filter((d) => d !== null)
    .sort((a, b) => a - b);
  const fmt = (xs) => (xs.length === 0 ? 'none seen' : `${median(xs).toFixed(1)} ms median, ${xs.at(-1).toFixed(1)} ms max (min ${xs[0].toFixed(1)})`);
  log?.(`  detection: observer δ ${fmt(observed)}; scraper δ ${fmt(scraped)}`);
  const lines = [
    `### ${title}`,
    '',
    `A server with leakwatch (\`LEAKWATCH_RESPONSE_THRESHOLD=${thresholdMs}ms\`, metrics served) under background traffic (hello world, one request in 20 to pg + Redis, 4 in flight) receives ${stalls} requests, ${staggerMs} ms apart, that it never answers and writes nothing to. Each becomes a leak at t0 + ${thresholdMs} ms; δ is how much later it is reported.`,
    '',
    '| seen by | leaks seen | δ median ms | δ max ms |',
    '| --- | --- | --- | --- |',
    `| the ledger's observer (\`responseLeaked\`), in the server, monotonic clock from the request handler; \`${COUNTER}\` is incremented in the same call | ${observed.length}/${stalls} | ${observed.length ? median(observed).toFixed(1) : '—'} | ${observed.length ? observed.at(-1).toFixed(1) : '—'} |`,
    `| the same, by the ledger's own clock (\`Date.now()\`, whole ms) | ${byLedgerClock.length}/${stalls} | ${byLedgerClock.length ? median(byLedgerClock).toFixed(1) : '—'} | ${byLedgerClock.length ? byLedgerClock.at(-1).toFixed(1) : '—'} |`,
    `| a scraper polling /metrics every ${pollMs} ms, from a separate process (t0: the request written; seen: the scrape answered) | ${scraped.length}/${stalls} | ${scraped.length ? median(scraped).toFixed(1) : '—'} | ${scraped.length ? scraped.at(-1).toFixed(1) : '—'} |`,
    '',
    `Where the two clocks of the server disagree (the wall clock is slewed on a VM) the monotonic δ can be slightly negative: the ledger schedules by the wall clock. t0 for the observer is taken in the request handler. The ledger arms one unref'd timer for the earliest deadline (+1 ms); a real Prometheus scrapes every 15–60 s, which is then the whole of the delay a dashboard shows.`,
  ];
  return { markdown: lines.join('\n'), figures: { observed, byLedgerClock, scraped } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log((await run({ log: (l) => process.stderr.write(l + '\n') })).markdown);
