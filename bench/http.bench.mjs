// HTTP overhead: hello-world and a JSON endpoint, bare against leakwatch (register preloaded).
import { compare, REGISTER } from './lib/http-bench.mjs';
import { median, summary } from './lib/stats.mjs';

export const title = 'HTTP responses (node:http)';

export async function run({ log, rounds = 5, requests = 20_000, warmup = 3_000 } = {}) {
  const modes = {
    bare: { execArgv: [], env: {} },
    leakwatch: { execArgv: ['--import', REGISTER], env: { LEAKWATCH_RESPONSE_THRESHOLD: '30s' } },
  };
  const lines = [
    `### ${title}`,
    '',
    `Server CPU (user+system) per request, measured in the server process while a separate load process sends ${requests} keep-alive requests (16 in flight) after ${warmup} warm-up requests; ${rounds} alternating rounds, a fresh server each. Median (min–max).`,
    '',
    '| endpoint | bare µs/req | leakwatch µs/req | CPU efficiency (bare/leakwatch) | bare req/s | leakwatch req/s | bare p99 ms | leakwatch p99 ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const figures = {};
  for (const app of ['hello', 'json']) {
    const r = await compare({ modes, app, rounds, requests, warmup, log });
    const cpu = (name) => r[name].map((f) => f.cpuUsPerRequest);
    const efficiency = r.bare.map((f, i) => f.cpuUsPerRequest / r.leakwatch[i].cpuUsPerRequest);
    figures[app] = { bare: median(cpu('bare')), leakwatch: median(cpu('leakwatch')), efficiency: median(efficiency) };
    lines.push(
      `| ${app === 'hello' ? 'hello world' : 'JSON'} | ${summary(cpu('bare'))} | ${summary(cpu('leakwatch'))} | ${summary(efficiency, 3)} | ${summary(r.bare.map((f) => f.requestsPerSecond), 0)} | ${summary(r.leakwatch.map((f) => f.requestsPerSecond), 0)} | ${summary(r.bare.map((f) => f.p99Ms), 2)} | ${summary(r.leakwatch.map((f) => f.p99Ms), 2)} |`,
    );
  }
  return { markdown: lines.join('\n'), figures };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await run({ log: console.error });
  console.log(markdown);
}
