// Memory after 1,000,000 requests: leakwatch's state must be O(in flight), so the heap after a
// million requests must be where it was after warm-up. One server with leakwatch (defaults),
// `--expose-gc`, full collections before each reading.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAST_LOAD, REGISTER, request, sendLoad, servicesEnv, startServer, stopServer } from './lib/http-bench.mjs';
import { median } from './lib/stats.mjs';

export const title = 'Memory after 1,000,000 requests';

const script = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const MB = 1024 * 1024;

/**
 * Bytes a server allocates, and promotes to V8's old generation, per request on the realistic
 * endpoint: a server with `--trace-gc-nvp`, whose young-generation collections say what they
 * found allocated and what they promoted, summed over `requests` requests after `warmup`.
 * A request's objects die young in a healthy server; what is promoted is kept alive past two young
 * collections, and the old generation's full collections pay for it later.
 */
async function promotion({ mode, requests, warmup, env }) {
  const dir = mkdtempSync(join(tmpdir(), 'leakwatch-bench-gc-'));
  const file = join(dir, 'gc.log');
  const fd = openSync(file, 'w');
  try {
    const { child, port } = await startServer({ mode: { execArgv: ['--trace-gc-nvp', ...mode.execArgv], env: { ...env, ...mode.env } }, app: 'realistic', script, stdout: fd });
    try {
      await sendLoad({ port, path: '/items/42?x=1', requests: warmup, concurrency: 16, loader: FAST_LOAD });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const from = statSync(file).size;
      await sendLoad({ port, path: '/items/42?x=1', requests, concurrency: 16, loader: FAST_LOAD });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const text = readFileSync(file, 'utf8').slice(from);
      const sum = (field) => [...text.matchAll(new RegExp(` ${field}=(\\d+)`, 'g'))].reduce((total, m) => total + Number(m[1]), 0);
      const collections = [...text.matchAll(/ gc=s /g)].length;
      return { allocated: sum('allocated') / requests, promoted: sum('promoted') / requests, collections };
    } finally {
      await stopServer(child);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const PROMOTION_MODES = {
  bare: { execArgv: [], env: {} },
  'leakwatch default': { execArgv: ['--import', REGISTER], env: {} },
};

/**
 * Young generations the promotion is measured with: V8's own sizing, and one fixed large from the
 * start (`--min-semi-space-size`, a throughput tuning). With the second, V8 once pretenured
 * leakwatch's connection records (allocated them in the old generation, having seen them outlive
 * young collections while the pool warmed up), and each dead one kept its request alive through
 * young collections: about 500 bytes a request promoted where V8's own sizing showed none.
 */
const YOUNG_GENERATIONS = [
  { label: "V8's own sizing", flags: [] },
  { label: '`--min-semi-space-size=16`', flags: ['--min-semi-space-size=16'] },
];

async function promotionSection({ log, env, rounds = 3, requests = 40_000, warmup = 20_000 }) {
  const configs = [];
  for (const young of YOUNG_GENERATIONS) {
    const figures = Object.fromEntries(Object.keys(PROMOTION_MODES).map((name) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, mode] of Object.entries(PROMOTION_MODES)) {
        const figure = await promotion({ mode: { ...mode, execArgv: [...young.flags, ...mode.execArgv] }, requests, warmup, env });
        figures[name].push(figure);
        log?.(`  promotion (${young.label}) round ${round + 1}/${rounds} ${name}: ${figure.allocated.toFixed(0)} B allocated, ${figure.promoted.toFixed(1)} B promoted per request`);
      }
    }
    configs.push({ young, figures });
  }
  const rows = configs.flatMap(({ young, figures }) =>
    Object.entries(figures).map(([name, fs]) => `| ${young.label} | ${name} | ${median(fs.map((f) => f.allocated)).toFixed(0)} | ${median(fs.map((f) => f.promoted)).toFixed(1)} (${Math.min(...fs.map((f) => f.promoted)).toFixed(1)}–${Math.max(...fs.map((f) => f.promoted)).toFixed(1)}) | ${median(fs.map((f) => f.collections)).toFixed(0)} |`),
  );
  const promoted = (figures, name) => median(figures[name].map((f) => f.promoted));
  return {
    markdown: [
      '#### Promotion to the old generation',
      '',
      `The realistic endpoint (Express 5 + pg + Redis, see the overhead section), one fresh server per measurement with \`--trace-gc-nvp\`: its young-generation collections report the bytes allocated and the bytes promoted (kept alive past two young collections) since the last one, summed over ${requests.toLocaleString('en')} requests after ${warmup.toLocaleString('en')} warm-up; ${rounds} rounds, modes alternated, median (min–max); with V8's own young generation, and with one fixed at 16 MB a semi-space from the start (\`--min-semi-space-size=16\`, a throughput tuning), where V8 pretenures differently. A request's objects should die young: what is promoted is paid for again by the old generation's full collections.`,
      '',
      '| young generation | mode | allocated B/request | promoted B/request | young collections |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n'),
    figures: {
      configs: configs.map(({ young, figures }) => ({ label: young.label, barePromoted: promoted(figures, 'bare'), leakwatchPromoted: promoted(figures, 'leakwatch default') })),
      leakwatchAllocated: median(configs[0].figures['leakwatch default'].map((f) => f.allocated)),
      bareAllocated: median(configs[0].figures.bare.map((f) => f.allocated)),
    },
  };
}

export async function run({ log, total = 1_000_000, chunks = 10, warmup = 50_000, everyNthToDatabase = 20, concurrency = 32 } = {}) {
  const env = servicesEnv();
  const paths = Array.from({ length: everyNthToDatabase }, (_, i) => (i === 0 ? '/items/42?x=1' : `/hello?n=${i}`));
  const loadEnv = { LOAD_PATHS: paths.join(',') };
  const { child, port } = await startServer({ mode: { execArgv: ['--expose-gc', '--import', REGISTER], env }, app: 'mixed', script });
  const started = performance.now();
  await sendLoad({ port, path: '/', requests: warmup, concurrency, loader: FAST_LOAD, env: loadEnv });
  const baseline = await request(child, 'heap', 'heapUsed');
  log?.(`  memory: baseline after ${warmup} warm-up requests: ${(baseline.heapUsed / MB).toFixed(2)} MB`);
  const readings = [];
  const perChunk = Math.ceil(total / chunks);
  let sent = 0;
  let busyMs = 0;
  while (sent < total) {
    const n = Math.min(perChunk, total - sent);
    const t0 = performance.now();
    await sendLoad({ port, path: '/', requests: n, concurrency, loader: FAST_LOAD, env: loadEnv });
    busyMs += performance.now() - t0;
    sent += n;
    const reading = await request(child, 'heap', 'heapUsed');
    readings.push({ sent, ...reading });
    log?.(`  memory: after ${sent} requests: ${(reading.heapUsed / MB).toFixed(2)} MB heap, ${reading.ledger.openResponses} open, ${reading.ledger.heldConnections} held`);
  }
  await stopServer(child);
  const last = readings.at(-1);
  const growth = (last.heapUsed - baseline.heapUsed) / MB;
  const maxGrowth = Math.max(...readings.map((r) => r.heapUsed - baseline.heapUsed)) / MB;
  const followed = last.ledger.totals.responses - baseline.ledger.totals.responses;
  const row = (label, r) => `| ${label} | ${(r.heapUsed / MB).toFixed(2)} | ${((r.heapUsed - baseline.heapUsed) / MB).toFixed(2)} | ${(r.rss / MB).toFixed(0)} | ${r.ledger.totals.responses} | ${r.ledger.openResponses} | ${r.ledger.heldConnections} | ${r.ledger.keptLeaks} |`;
  const shown = readings.filter((_, i) => i % Math.max(1, Math.floor(readings.length / 4)) === Math.max(1, Math.floor(readings.length / 4)) - 1 || i === readings.length - 1);
  const lines = [
    `### ${title}`,
    '',
    `One server (\`--expose-gc --import leakwatch/register\`, defaults) on node:http: every ${everyNthToDatabase}th request runs one pg query and one Redis GET (as the realistic endpoint does), the others answer hello world; every request replaces res.end and calls through. ${warmup} warm-up requests, then ${total.toLocaleString('en')} requests from lib/fast-load.mjs (${concurrency} keep-alive sockets) in ${chunks} chunks; heap read after three full collections (\`gc()\`). ${followed.toLocaleString('en')} responses were followed by the ledger in between (${((total / busyMs) * 1000).toFixed(0)} req/s).`,
    '',
    '| reading | heap MB | against baseline MB | RSS MB | responses followed | open | connections held | leaks kept |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    row('baseline, after warm-up', baseline),
    ...shown.map((r) => row(`after ${r.sent.toLocaleString('en')}`, r)),
    '',
    `Heap after ${total.toLocaleString('en')} requests: ${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MB against the warm baseline (largest reading along the way: ${maxGrowth >= 0 ? '+' : ''}${maxGrowth.toFixed(2)} MB); target within 5 MB: ${Math.abs(growth) <= 5 && maxGrowth <= 5 ? 'met' : 'missed'}. Run time ${((performance.now() - started) / 1000).toFixed(0)} s.`,
  ];
  const promoted = await promotionSection({ log, env });
  return { markdown: [...lines, '', promoted.markdown].join('\n'), figures: { baselineMb: baseline.heapUsed / MB, growthMb: growth, maxGrowthMb: maxGrowth, promotion: promoted.figures } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await run({ log: (line) => process.stderr.write(line + '\n') });
  console.log(markdown);
}
