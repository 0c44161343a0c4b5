// CPU microseconds of the server process per request, bare against instrumented, in alternating
// rounds: each round starts a fresh server per mode, warms it, then measures a fixed load.
import { execFile, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const server = fileURLToPath(new URL('./servers.mjs', import.meta.url));
const load = fileURLToPath(new URL('./load.mjs', import.meta.url));
export const REGISTER = fileURLToPath(new URL('../../dist/register.js', import.meta.url));

function request(child, message, key) {
  return new Promise((resolve) => {
    const onMessage = (m) => {
      if (key in m) {
        child.off('message', onMessage);
        resolve(m);
      }
    };
    child.on('message', onMessage);
    if (message !== null) child.send(message);
  });
}

/** One measurement: a server in `mode` ({execArgv, env}), `warmup` then `requests` requests. */
export async function measure({ mode, app, script = server, path = '/items/42?x=1', requests, warmup, concurrency = 16 }) {
  const child = fork(script, [], { execArgv: mode.execArgv, env: { ...process.env, ...mode.env, BENCH_APP: app }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port } = await request(child, null, 'port');
  await run(process.execPath, [load, port, path, warmup, concurrency]);
  await request(child, 'start', 'started');
  const { stdout } = await run(process.execPath, [load, port, path, requests, concurrency]);
  const { cpuUs } = await request(child, 'stop', 'cpuUs');
  child.send('exit');
  await new Promise((resolve) => child.once('exit', resolve));
  const { durationMs, p99Ms } = JSON.parse(stdout);
  return { cpuUsPerRequest: cpuUs / requests, requestsPerSecond: (requests / durationMs) * 1000, p99Ms };
}

/** Alternates the modes for `rounds` rounds and returns every figure per mode. */
export async function compare({ modes, app, rounds, requests, warmup, script, path, log }) {
  const results = Object.fromEntries(Object.keys(modes).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, mode] of Object.entries(modes)) {
      const figure = await measure({ mode, app, script, path, requests, warmup });
      results[name].push(figure);
      log?.(`  ${app} round ${round + 1}/${rounds} ${name}: ${figure.cpuUsPerRequest.toFixed(1)} µs CPU/request, ${figure.requestsPerSecond.toFixed(0)} req/s`);
    }
  }
  return results;
}
