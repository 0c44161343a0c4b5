// Load generator, in its own process so its CPU is not counted: N keep-alive requests with C in
// flight. Prints {durationMs, p50Ms, p99Ms} as JSON.
import http from 'node:http';

const [port, path, total, concurrency] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const latencies = new Float64Array(Number(total));
let sent = 0;
let done = 0;

function one() {
  if (sent >= Number(total)) return;
  const i = sent++;
  const t0 = performance.now();
  http
    .get({ host: '127.0.0.1', port: Number(port), path, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies[i] = performance.now() - t0;
        done++;
        if (done === Number(total)) finish();
        else one();
      });
    })
    .on('error', (error) => {
      console.error(error);
      process.exit(1);
    });
}

const started = performance.now();
function finish() {
  const durationMs = performance.now() - started;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ durationMs, p50Ms: sorted[Math.floor(sorted.length * 0.5)], p99Ms: sorted[Math.floor(sorted.length * 0.99)] }));
  agent.destroy();
}
for (let i = 0; i < Number(concurrency); i++) one();
