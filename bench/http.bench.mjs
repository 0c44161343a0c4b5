// HTTP overhead: hello-world and a JSON endpoint, bare against leakwatch (register preloaded).
import { compareSideBySide, REGISTER } from './lib/http-bench.mjs';
import { median, summary } from './lib/stats.mjs';

export const title = 'HTTP responses (node:http)';

export async function run({ log, rounds = 12, burst = 4_000, warmup = 40_000, instances = 3 } = {}) {
  const modes = {
    bare: { execArgv: [], env: {} },
    leakwatch: { execArgv: ['--import', REGISTER], env: { LEAKWATCH_RESPONSE_THRESHOLD: '30s' } },
    'leakwatch, no end attribution': { execArgv: ['--import', REGISTER], env: { LEAKWATCH_RESPONSE_THRESHOLD: '30s', LEAKWATCH_END_ATTRIBUTION: 'false' } },
  };
  const names = { hello: 'hello world', json: 'JSON', 'replaced-end': 'hello world, res.end replaced per request' };
  const lines = [
    `### ${title}`,
    '',
    `Server CPU (user+system) per request, measured in the server process, in the steady state, the modes side by side (see the overhead section below for the method): servers in ${instances} sets, one per mode in each, each set starting and loading them in another order, all loaded at once by one load process (lib/load-driver.mjs, raw keep-alive sockets kept open, 8 in flight to each server); after ${warmup} warm-up requests per server, ${rounds} rounds of ${burst} requests per server, shared out among the sets. Median (min–max) over rounds.`,
    '',
    'CPU efficiency is bare µs ÷ instrumented µs per request, computed per round (1.0 = free).',
    '',
    '| endpoint | mode | CPU µs/req | CPU efficiency | req/s | p99 ms |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const figures = {};
  for (const app of Object.keys(names)) {
    const r = await compareSideBySide({ modes, app, path: '/items/42?x=1', rounds, burst, warmup, instances, log });
    figures[app] = {};
    for (const mode of Object.keys(modes)) {
      const cpu = r[mode].map((f) => f.cpuUsPerRequest);
      const efficiency = r.bare.map((f, i) => f.cpuUsPerRequest / r[mode][i].cpuUsPerRequest);
      figures[app][mode] = { cpuUs: median(cpu), efficiency: median(efficiency) };
      lines.push(
        `| ${names[app]} | ${mode} | ${summary(cpu)} | ${mode === 'bare' ? '—' : summary(efficiency, 3)} | ${summary(r[mode].map((f) => f.requestsPerSecond), 0)} | ${summary(r[mode].map((f) => f.p99Ms), 2)} |`,
      );
    }
  }
  return { markdown: lines.join('\n'), figures };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await run({ log: console.error });
  console.log(markdown);
}
