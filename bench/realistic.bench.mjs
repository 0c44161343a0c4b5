// CPU per request on a realistic endpoint (Express 5, one pg query and one Redis command) and on
// a hello-world endpoint, bare against leakwatch and against OpenTelemetry, the modes side by side
// in one run. Servers: lib/realistic-server.cjs; OpenTelemetry set-up: lib/otel.cjs.
import { fileURLToPath } from 'node:url';
import { compareSideBySide, freePort, REGISTER, servicesEnv } from './lib/http-bench.mjs';
import { median, medianIntervalOverSets, summary } from './lib/stats.mjs';

export const title = 'Overhead against the bare app and against OpenTelemetry';

const script = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const OTEL = fileURLToPath(new URL('./lib/otel.cjs', import.meta.url));
const ALS_ONLY = fileURLToPath(new URL('./lib/als-only.mjs', import.meta.url));
const FLOOR = fileURLToPath(new URL('./lib/follow-floor.mjs', import.meta.url));

export const MODE_NOTES = {
  bare: 'no instrumentation',
  'AsyncLocalStorage alone': 'reference: one AsyncLocalStorage store entered per request, nothing else (lib/als-only.mjs)',
  'following floor': 'reference, realistic endpoint only: the least any tool pays that follows every response to its close and links each pg checkout and Redis command to its request: the store above, a record and a close listener per response, a record stamped at each checkout and release (pg-pool\'s own events) and at each command\'s send and reply; no ledger, deadlines, protocol or root cause (lib/follow-floor.mjs)',
  'leakwatch, stacks and attribution off': '`--import leakwatch/register` with `LEAKWATCH_ACQUIRE_STACK_FRAMES=0 LEAKWATCH_END_ATTRIBUTION=false`',
  'leakwatch default': '`--import leakwatch/register`, defaults: a 10-frame acquisition stack per pg checkout, res.end attribution on (one 1-frame site capture per res.end replacement)',
  'leakwatch default + metrics': 'as the default, plus `LEAKWATCH_METRICS_PORT` (prom-client metrics fed per response; nothing scrapes)',
  OpenTelemetry: '`--require lib/otel.cjs`: http + pg + ioredis instrumentations, BatchSpanProcessor into a dropping exporter, MeterProvider with PrometheusExporter',
};

function modesFor(names) {
  const env = servicesEnv();
  const all = {
    bare: { execArgv: [], env },
    'AsyncLocalStorage alone': { execArgv: ['--import', ALS_ONLY], env },
    'following floor': { execArgv: ['--import', FLOOR], env },
    'leakwatch, stacks and attribution off': { execArgv: ['--import', REGISTER], env: { ...env, LEAKWATCH_ACQUIRE_STACK_FRAMES: '0', LEAKWATCH_END_ATTRIBUTION: 'false' } },
    'leakwatch default': { execArgv: ['--import', REGISTER], env },
    'leakwatch default + metrics': async () => ({ execArgv: ['--import', REGISTER], env: { ...env, LEAKWATCH_METRICS_PORT: String(await freePort()) } }),
    OpenTelemetry: async () => ({ execArgv: ['--require', OTEL], env: { ...env, OTEL_BENCH_PROMETHEUS_PORT: String(await freePort()) } }),
  };
  return Object.fromEntries(names.map((name) => [name, all[name]]));
}

const ENDPOINTS = {
  realistic: {
    name: 'Express 5 + pg + Redis',
    app: 'realistic',
    path: '/items/42?color=red',
    modes: ['bare', 'AsyncLocalStorage alone', 'following floor', 'leakwatch, stacks and attribution off', 'leakwatch default', 'leakwatch default + metrics', 'OpenTelemetry'],
  },
  hello: {
    name: 'hello world (node:http)',
    app: 'hello',
    path: '/hello?x=1',
    modes: ['bare', 'AsyncLocalStorage alone', 'leakwatch, stacks and attribution off', 'leakwatch default', 'OpenTelemetry'],
  },
};

/** Per server set: bare's CPU over the set's rounds ÷ the mode's (the sets differ by where V8 put things; see compareSideBySide). */
function bySet(bare, mode) {
  const sums = new Map();
  for (let i = 0; i < bare.length; i++) {
    const s = sums.get(bare[i].set) ?? { bare: 0, mode: 0 };
    s.bare += bare[i].cpuUsPerRequest;
    s.mode += mode[i].cpuUsPerRequest;
    sums.set(bare[i].set, s);
  }
  return [...sums.values()].map((s) => s.bare / s.mode);
}

async function endpointSection(endpoint, { log, rounds, burst, warmup, instances }) {
  const modes = modesFor(endpoint.modes);
  const results = await compareSideBySide({ modes, app: endpoint.app, script, path: endpoint.path, rounds, burst, warmup, instances, log, concurrency: 8 });
  const bare = results.bare.map((f) => f.cpuUsPerRequest);
  const figures = {};
  const rows = [];
  for (const name of endpoint.modes) {
    const cpu = results[name].map((f) => f.cpuUsPerRequest);
    const efficiency = cpu.map((us, i) => bare[i] / us);
    const added = cpu.map((us, i) => us - bare[i]);
    const mainThread = results[name].every((f) => f.mainThreadUsPerRequest !== null) ? results[name].map((f) => f.mainThreadUsPerRequest) : null;
    const warmupUs = results[name].warmupUs;
    const perSet = bySet(results.bare, results[name]);
    const sets = results[name].map((f) => f.set);
    const setCount = new Set(sets).size;
    const efficiencyInterval = setCount > 1 ? medianIntervalOverSets(efficiency, sets) : null;
    figures[name] = { perSet, cpu, cpuUs: median(cpu), efficiency: median(efficiency), efficiencyMin: Math.min(...efficiency), efficiencyMax: Math.max(...efficiency), efficiencyInterval, addedUs: median(added), mainThreadUs: mainThread === null ? null : median(mainThread), warmupUs: median(warmupUs), rounds, sets: setCount };
    rows.push(
      `| ${name} | ${summary(cpu)} | ${mainThread === null ? '—' : median(mainThread).toFixed(1)} | ${name === 'bare' ? '—' : summary(added)} | ${name === 'bare' ? '—' : summary(efficiency, 3)} | ${median(warmupUs).toFixed(1)} | ${summary(results[name].map((f) => f.requestsPerSecond), 0)} | ${summary(results[name].map((f) => f.p99Ms), 1)} |`,
    );
  }
  return { rows, figures };
}

/** Rounds, requests per burst and warm-up requests per endpoint; run() takes any of them to override. */
// Many short-lived server sets rather than long ones: what differs most is one server process from
// the next of the same code (per-set ratios ran 0.91-1.09 in one run), so more sets narrow the
// median's interval more than more rounds in each. The set counts are whole turns of the order
// compareSideBySide rotates (twice the modes on the realistic endpoint, once on hello world).
// Warm-up: 15,000 requests, what bench/instructions.mjs leaves uncounted; by then V8 has optimized
// the request path, though one process may still keep a function in a lower tier where the next
// does not.
export const DEFAULTS = { realistic: { rounds: 32, burst: 1_000, warmup: 15_000, instances: 14 }, hello: { rounds: 24, burst: 4_000, warmup: 30_000, instances: 5 } };

/** What carrying a request's context through awaits costs on the Node running this. */
function contextFloorNote() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) return `on Node ${major} carrying a context through awaits turns on async_hooks promise hooks for every promise in the process, whoever does it`;
  return `on Node ${major} AsyncLocalStorage rides on AsyncContextFrame (the default since Node 24) and needs no promise hooks, so this floor is what entering a store per request costs`;
}

export async function run({ log, realistic: realisticOptions = {}, hello: helloOptions = {} } = {}) {
  const realistic = { ...DEFAULTS.realistic, ...realisticOptions };
  const hello = { ...DEFAULTS.hello, ...helloOptions };
  const r = await endpointSection(ENDPOINTS.realistic, { log, ...realistic });
  const h = await endpointSection(ENDPOINTS.hello, { log, ...hello });
  const head = ['| mode | CPU µs/req | of it, main thread | added µs/req | CPU efficiency | warm-up µs/req | req/s | p99 ms |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  const lw = r.figures['leakwatch default'];
  const otel = r.figures.OpenTelemetry;
  const als = r.figures['AsyncLocalStorage alone'];
  const lean = r.figures['leakwatch, stacks and attribution off'];
  const floor = r.figures['following floor'];
  const ratio = lw.addedUs / otel.addedUs;
  const lines = [
    `### ${title}`,
    '',
    `Server CPU (user+system, \`process.cpuUsage()\` in the server process, all its threads) per request, in the steady state, the modes side by side: one server per mode, all loaded at once by one load process (lib/load-driver.mjs: raw keep-alive sockets kept open to every server, 8 requests in flight to each), each sent the same number of requests in the same window, so whatever the shared machine does meanwhile falls on every mode alike (alternating bursts, as this bench did before, left rounds ±15 % apart here). Servers run in ${realistic.instances} sets on the realistic endpoint (${hello.instances} on hello world), one server per mode in each, one set after the other, each set starting and loading its servers in another order (rotated a whole number of turns, so every mode takes every place alike: with bare always first, as this bench ran before, a run read the following floor, which does more than bare, at efficiency 1.07, and AsyncLocalStorage alone at 1.03): two servers of the same code differ by a few per cent for as long as they run (where V8 placed their code and heap, what it inlined, how the hidden classes of the app's objects settled: on the realistic endpoint one bare server ran about 30,000 instructions a request more than others in V8's runtime, changing and migrating them, bench/instructions.mjs), so one server per mode is only as good as that draw, and more sets make the median less of one. Each set is first warmed (the requests given below, per server; the CPU per request over them is the *warm-up* column: V8 compiling the code that serves a request, leakwatch's included, on its background threads), then measured over rounds (${realistic.rounds} rounds of ${realistic.burst} requests per server on the realistic endpoint, ${hello.rounds} of ${hello.burst} on hello world, shared out among the sets). With every server busy at once the machine is fuller than with one, so a request costs more µs here than alone; the ratios are what compare. Median (min–max) over rounds. *Added* and *CPU efficiency* (bare µs ÷ mode µs) are computed per round against the bare server of the same round. *Of it, main thread* is the median of the same rounds' CPU on the server's main thread (\`process.threadCpuUsage()\`, Node ≥ 23.9; — where Node has none); the rest is V8's background threads (compilation, the parallel parts of garbage collection). req/s and p99 are for reference only: the load process, PostgreSQL and Redis share the same 2 cores.`,
    '',
    'Every endpoint replaces `res.end` on each request and calls through (as compression and express-session do) in every mode, so where res.end attribution is on it does its work on every request.',
    '',
    'Modes:',
    ...Object.entries(MODE_NOTES).map(([name, note]) => `- **${name}**: ${note}.`),
    '',
    `#### ${ENDPOINTS.realistic.name}`,
    '',
    `\`GET /items/:id\`: \`pool.query()\` (pg pool of 10) and \`redis.get()\` on a shared ioredis client, then \`res.json()\`; ${realistic.warmup} warm-up requests per server.`,
    '',
    ...head,
    ...r.rows,
    '',
    `leakwatch default adds ${lw.addedUs.toFixed(1)} µs per request, ${(ratio * 100).toFixed(0)}% of what OpenTelemetry adds (${otel.addedUs.toFixed(1)} µs); CPU efficiency ${lw.efficiency.toFixed(3)} against OpenTelemetry's ${otel.efficiency.toFixed(3)} (medians of per-round figures). Per server set (bare's CPU over the set's rounds ÷ leakwatch default's): ${lw.perSet.map((e) => e.toFixed(3)).join(', ')}; stacks and attribution off: ${lean.perSet.map((e) => e.toFixed(3)).join(', ')}. The AsyncLocalStorage floor is ${als.addedUs.toFixed(1)} µs (efficiency ${als.efficiency.toFixed(3)}): ${contextFloorNote()}. The following floor adds ${floor.addedUs.toFixed(1)} µs (efficiency ${floor.efficiency.toFixed(3)}; per server set: ${floor.perSet.map((e) => e.toFixed(3)).join(', ')}): what following every response, checkout and command to its request costs before any of leakwatch's rules, so what leakwatch default adds above it, ${median(lw.cpu.map((us, i) => us - floor.cpu[i])).toFixed(1)} µs (median of per-round differences), is its design's (the ledger, deadlines, the pg protocol, pool waits, the root cause). Default against stacks and attribution off: ${(lw.addedUs - lean.addedUs).toFixed(1)} µs; on this endpoint that is res.end attribution (one replacement per request, its site looked up by the replacement's source) and no acquisition stack, since \`pool.query()\` releases its own client and is never idle in the app's hands. Warm-up, once per process: leakwatch default ${lw.warmupUs.toFixed(1)} µs per request over the first ${realistic.warmup} requests against bare's ${r.figures.bare.warmupUs.toFixed(1)}.`,
    '',
    `#### ${ENDPOINTS.hello.name}`,
    '',
    `\`res.end('hello world')\` after the per-request res.end replacement; ${hello.warmup} warm-up requests per server.`,
    '',
    ...head,
    ...h.rows,
  ];
  return { markdown: lines.join('\n'), figures: { realistic: r.figures, hello: h.figures } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await run({ log: (line) => process.stderr.write(line + '\n') });
  console.log(markdown);
}
