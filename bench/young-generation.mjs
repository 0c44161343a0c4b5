// V8's young generation and the RSS of the realistic endpoint over a long run, bare and leakwatch
// (defaults) side by side: the measurement behind the README's sentence on RSS, not a section of
// `npm run bench` (it takes minutes).
//
//   npm run build && .ci/cache/node-24/bin/node bench/young-generation.mjs [--requests=N] [--chunk=N]
//
// Both servers (lib/realistic-server.cjs) are loaded at once, a chunk at a time, 8 in flight each
// (lib/load.mjs), so that neither sits idle between chunks: V8 shrinks the young generation of a
// process that allocates little. After each chunk each server says, as the load left it (no
// collection first), the size of its new space (the young generation, both semi-spaces), its heap
// and its RSS. V8 grows the new space once the bytes that survived young collections since it last
// grew add up to its size, and keeps it under steady load: a process that keeps more alive across
// a young collection grows it sooner, and a long run shows whether the other one gets there too.
import { fileURLToPath } from 'node:url';
import { cliFlags } from './lib/cli-flags.mjs';
import { REGISTER, request, sendLoad, servicesEnv, startServer, stopServer } from './lib/http-bench.mjs';
import { median } from './lib/stats.mjs';

function usage(message) {
  process.stderr.write(`${message}\nusage: node bench/young-generation.mjs [--requests=N] [--chunk=N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const { count } = cliFlags(args, usage);
for (const arg of args) if (!/^--(requests|chunk)=/.test(arg)) usage(`unknown argument ${JSON.stringify(arg)}`);
const requests = count('requests', 500_000);
const chunk = count('chunk', 25_000);
if (chunk > requests) usage(`--chunk (${chunk}) must be at most --requests (${requests})`);

const SERVER = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const MODES = {
  bare: { execArgv: [], env: servicesEnv() },
  leakwatch: { execArgv: ['--import', REGISTER], env: servicesEnv() },
};
const mb = (bytes) => (bytes / 2 ** 20).toFixed(0);

const servers = {};
try {
  for (const [name, mode] of Object.entries(MODES)) servers[name] = await startServer({ mode, app: 'realistic', script: SERVER });
  console.log(`Node ${process.versions.node}, the realistic endpoint, ${requests} requests to each server, ${chunk} at a time, both loaded at once.\n`);
  console.log('| requests | bare: new space MB | bare: heap MB | bare: RSS MB | leakwatch: new space MB | leakwatch: heap MB | leakwatch: RSS MB |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const readings = [];
  for (let sent = chunk; sent <= requests; sent += chunk) {
    await Promise.all(Object.values(servers).map(({ port }) => sendLoad({ port, path: '/items/42?x=1', requests: chunk, concurrency: 8 })));
    const reading = { sent };
    for (const [name, { child }] of Object.entries(servers)) reading[name] = (await request(child, 'memory', 'memory')).memory;
    readings.push(reading);
    console.log(`| ${sent} | ${Object.keys(MODES).map((name) => [reading[name].newSpace, reading[name].heapTotal, reading[name].rss].map(mb).join(' | ')).join(' | ')} |`);
  }
  console.log('');
  for (const name of Object.keys(MODES)) {
    const largest = Math.max(...readings.map((r) => r[name].newSpace));
    const first = readings.find((r) => r[name].newSpace === largest);
    console.log(`${name}: new space reached ${mb(largest)} MB by ${first.sent} requests.`);
  }
  const both = Math.min(...Object.keys(MODES).map((name) => Math.max(...readings.map((r) => r[name].newSpace))));
  const alike = readings.filter((r) => Object.keys(MODES).every((name) => r[name].newSpace === both));
  if (alike.length === 0) {
    console.log('The two never had the same new space at once: no RSS to compare like for like.');
  } else {
    const rss = (name) => median(alike.map((r) => r[name].rss));
    console.log(`With both at ${mb(both)} MB of new space (${alike.length} readings), median RSS: bare ${mb(rss('bare'))} MB, leakwatch ${mb(rss('leakwatch'))} MB.`);
  }
} finally {
  for (const { child } of Object.values(servers)) await stopServer(child);
}
