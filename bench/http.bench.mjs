// HTTP overhead: hello-world and a JSON endpoint, bare against leakwatch (register preloaded).
import { compare, REGISTER } from './lib/http-bench.mjs';
import { median, summary } from './lib/stats.mjs';

export const title = 'HTTP responses (node:http)';

export async function run({ log, rounds = 5, requests = 20_000, warmup = 3_000 } = {}) {
  const modes = {
    bare: { execArgv: [], env: {} },
    leakwatch: { execArgv: ['--import', REGISTER], env: { LEAKWATCH_RESPONSE_THRESHOLD: '30s' } },
    'leakwatch, no end attribution': { execArgv: ['--import', REGISTER], env: { LEAKWATCH_RESPONSE_THRESHOLD: '30s', LEAKWATCH_END_ATTRIBUTION: 'false' } },
  };
  const names = { hello: 'hello world', json: 'JSON', 'replaced-end': 'hello world, res.end replaced per request' };
  const lines = [
    `### ${title}`,
    '',
    `Server CPU (user+system) per request, measured in the server process while a separate load process sends ${requests} keep-alive requests (16 in flight) after ${warmup} warm-up requests; ${rounds} alternating rounds, a fresh server each. Median (min–max).`,
    '',
    'CPU efficiency is bare µs ÷ instrumented µs per request, computed per round (1.0 = free).',
    '',
    '| endpoint | mode | CPU µs/req | CPU efficiency | req/s | p99 ms |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const figures = {};
  for (const app of Object.keys(names)) {
    const r = await compare({ modes, app, rounds, requests, warmup, log });
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
