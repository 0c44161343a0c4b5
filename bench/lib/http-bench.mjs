// CPU microseconds of the server process per request, bare against instrumented, in alternating
// rounds: each round starts a fresh server per mode, warms it, then measures a fixed load.
import { execFile, fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const server = fileURLToPath(new URL('./servers.mjs', import.meta.url));
/** node:http's own client: heavier, as a typical client is. */
export const LOAD = fileURLToPath(new URL('./load.mjs', import.meta.url));
/** Raw keep-alive sockets: a few µs per request, for long runs and busy machines. */
export const FAST_LOAD = fileURLToPath(new URL('./fast-load.mjs', import.meta.url));
export const REGISTER = fileURLToPath(new URL('../../dist/register.js', import.meta.url));

/** The child process has ended: it will send no message and no 'exit' event any more. */
const hasEnded = (child) => child.exitCode !== null || child.signalCode !== null;

/** How a child process ended: its exit code, or the signal that killed it. */
const howItEnded = (code, signal) => (signal === null || signal === undefined ? `exited (${code})` : `was killed (${signal})`);

/**
 * Sends `message` (unless null) and resolves the child's first message that has `key`. Rejects
 * when the child ends first, or says nothing with `key` within `timeoutMs`: a bench that waits for
 * ever on a silent process is a bench with no results (one Node 20 run stopped so, every process
 * idle, at round 20 of a set).
 */
export function request(child, message, key, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    // A child that is gone already never sends 'exit' again: waiting on it would hang the bench.
    if (hasEnded(child)) {
      reject(new Error(`the server ${howItEnded(child.exitCode, child.signalCode)} before answering ${key}`));
      return;
    }
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m) => {
      if (m !== null && typeof m === 'object' && key in m) {
        done();
        resolve(m);
      }
    };
    const onExit = (code, signal) => {
      done();
      reject(new Error(`the server ${howItEnded(code, signal)} before answering ${key}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`process ${child.pid} did not answer ${key} within ${timeoutMs / 1000} s (asked ${JSON.stringify(message)})`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message !== null) child.send(message);
  });
}

/** A port free now on 127.0.0.1 (for servers that cannot listen on port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Where lib/realistic-server.cjs finds PostgreSQL and Redis: the test suite's (LEAKWATCH_TEST_*_URL), else the local defaults. */
export function servicesEnv() {
  return {
    BENCH_PG_URL: process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test',
    BENCH_REDIS_URL: process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

/** This environment without what would preload or configure leakwatch in every mode alike. */
export function cleanEnv() {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const name of Object.keys(env)) if (name.startsWith('LEAKWATCH_')) delete env[name];
  return env;
}

/** Starts a server in `mode` ({execArgv, env}); resolves {child, port} once it listens. `stdout`: where its stdout goes (a file descriptor), none by default; `cwd`: its working directory. */
export async function startServer({ mode, app, script = server, stdout = 'ignore', cwd = undefined }) {
  const child = fork(script, [], { execArgv: mode.execArgv, env: { ...cleanEnv(), ...mode.env, BENCH_APP: app }, stdio: ['ignore', stdout, 'inherit', 'ipc'], cwd });
  const { port } = await request(child, null, 'port');
  return { child, port };
}

/** How long a server may take to close and exit once asked before it is killed. */
const EXIT_GRACE_MS = 15_000;

export async function stopServer(child) {
  if (hasEnded(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // A server that never exits (its pool waiting on a client, say) would hold the whole bench.
  const timer = setTimeout(() => {
    process.stderr.write(`bench: server ${child.pid} did not exit within ${EXIT_GRACE_MS / 1000} s of being asked to; killed\n`);
    child.kill('SIGKILL');
  }, EXIT_GRACE_MS);
  child.send('exit');
  await exited;
  clearTimeout(timer);
}

/** Sends `requests` requests to `port` from a separate process; resolves its {durationMs, p50Ms, p99Ms}. */
export async function sendLoad({ port, path, requests, concurrency = 16, loader = LOAD, env }) {
  const { stdout } = await run(process.execPath, [loader, port, path, requests, concurrency], { env: env === undefined ? process.env : { ...process.env, ...env }, maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

/** One measurement: a server in `mode` ({execArgv, env}), `warmup` then `requests` requests. */
export async function measure({ mode, app, script = server, path = '/items/42?x=1', requests, warmup, concurrency = 16, loader = LOAD }) {
  const { child, port } = await startServer({ mode, app, script });
  await sendLoad({ port, path, requests: warmup, concurrency, loader });
  await request(child, 'start', 'started');
  const { durationMs, p99Ms } = await sendLoad({ port, path, requests, concurrency, loader });
  const { cpuUs } = await request(child, 'stop', 'cpuUs');
  await stopServer(child);
  return { cpuUsPerRequest: cpuUs / requests, requestsPerSecond: (requests / durationMs) * 1000, p99Ms };
}

/**
 * Alternates the modes for `rounds` rounds and returns every figure per mode. With `rotate`, the
 * order of the modes shifts by one each round, so a drift in the machine's speed favours none.
 */
export async function compare({ modes, app, rounds, requests, warmup, script, path, log, concurrency, loader, rotate = false }) {
  const names = Object.keys(modes);
  const results = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[rotate ? (round + k) % names.length : k];
      const mode = typeof modes[name] === 'function' ? await modes[name]() : modes[name];
      const figure = await measure({ mode, app, script, path, requests, warmup, concurrency, loader });
      results[name].push(figure);
      log?.(`  ${app} round ${round + 1}/${rounds} ${name}: ${figure.cpuUsPerRequest.toFixed(1)} µs CPU/request, ${figure.requestsPerSecond.toFixed(0)} req/s`);
    }
  }
  return results;
}

const LOAD_DRIVER = fileURLToPath(new URL('./load-driver.mjs', import.meta.url));

/** Longest a burst may take (the warm-up bursts on Node 20 take about a minute): past it, the bench fails rather than waits. */
const BURST_TIMEOUT_MS = 600_000;

/** A load process for a whole comparison (lib/load-driver.mjs); `burst(targets)` resolves one {durationMs, p50Ms, p99Ms} per target. */
async function startLoadDriver() {
  const child = fork(LOAD_DRIVER, [], { env: cleanEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await request(child, null, 'ready');
  return {
    async burst(targets) {
      const answer = await new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        const onMessage = (m) => {
          done();
          resolve(m);
        };
        const onExit = (code) => {
          done();
          reject(new Error(`the load driver exited (${code}) during a burst`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`the load driver did not finish a burst within ${BURST_TIMEOUT_MS / 1000} s (${targets.map((t) => `${t.requests} requests to port ${t.port}`).join(', ')})`));
        }, BURST_TIMEOUT_MS);
        child.once('message', onMessage);
        child.once('exit', onExit);
        child.send({ burst: targets });
      });
      if (answer.error !== undefined) throw new Error(`load driver: ${answer.error}`);
      return answer.figures;
    },
    /** The servers on `ports` stop: their connections are closed and forgotten (a new server may get a port again). */
    forget(ports) {
      child.send({ forget: ports });
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send('exit');
      await exited;
    },
  };
}

/**
 * Compares modes side by side: one server per mode, all loaded at once by one load process, each
 * server sent the same number of requests in the same window, and the CPU of each (user+system of
 * the whole process, and `threadUs` of its main thread where Node has process.threadCpuUsage) read
 * around that window. Whatever the shared machine does meanwhile (another tenant, a slower minute)
 * falls on every mode alike, which alternating bursts only approximate: on this machine they left
 * rounds ±15 % apart.
 *
 * Servers are started in `instances` sets, one server per mode each, one set after the other, and
 * the rounds are shared out among the sets: two servers of the same code differ by a few per cent
 * for as long as they run (where V8 put their code and heap, which functions it inlined), so a
 * comparison of one server per mode is only as good as that draw; several sets average it out.
 * Each set starts and loads its servers in another order (the modes rotated by one a set), so no
 * mode always goes first; give `instances` as a multiple of the modes for every mode to take every
 * place alike.
 * Each set is first warmed with `warmup` requests per server (their CPU per request is kept as
 * `warmupUs`: V8 compiling the code that serves a request, leakwatch's included, on its background
 * threads), then measured over rounds of `burst` requests per server, `concurrency` in flight to
 * each. (A gc() before each round would make things worse: a forced full collection shrinks the
 * young generation, and the round after it pays for many more scavenges.) Returns, per mode, one
 * figure per round (every set's rounds in turn, each with its set) and one warm-up figure per set.
 */
export async function compareSideBySide({ modes, app, script, path, rounds, burst, warmup, log, concurrency = 8, instances = 1 }) {
  const names = Object.keys(modes);
  const results = Object.fromEntries(names.map((name) => [name, []]));
  const warmups = Object.fromEntries(names.map((name) => [name, []]));
  const driver = await startLoadDriver();
  /** Sends `requests` to every server at once; resolves each one's CPU and load figures. */
  const together = async (servers, requests, order) => {
    for (const name of order) await request(servers[name].child, 'start', 'started');
    const load = await driver.burst(order.map((name) => ({ name, port: servers[name].port, path, requests, concurrency })));
    const figures = {};
    for (const [i, name] of order.entries()) {
      const { cpuUs, threadUs } = await request(servers[name].child, 'stop', 'cpuUs');
      figures[name] = { cpuUs, threadUs, ...load[i] };
    }
    return figures;
  };
  try {
    for (let set = 0; set < instances; set++) {
      const servers = {};
      // Each set starts and loads the servers in another order: with bare always first, the
      // following floor (more work than bare) read efficiency 1.07, every mode read high against it.
      const shift = set % names.length;
      const order = [...names.slice(shift), ...names.slice(0, shift)];
      try {
        for (const name of order) {
          const mode = typeof modes[name] === 'function' ? await modes[name]() : modes[name];
          servers[name] = await startServer({ mode, app, script });
        }
        const warm = await together(servers, warmup, order);
        for (const name of names) warmups[name].push(warm[name].cpuUs / warmup);
        const setRounds = Math.floor(rounds / instances) + (set < rounds % instances ? 1 : 0);
        for (let r = 0; r < setRounds; r++) {
          const figures = await together(servers, burst, order);
          const line = [];
          for (const name of names) {
            const { cpuUs, threadUs, durationMs, p99Ms } = figures[name];
            results[name].push({ set, cpuUsPerRequest: cpuUs / burst, mainThreadUsPerRequest: threadUs === undefined ? null : threadUs / burst, requestsPerSecond: (burst / durationMs) * 1000, p99Ms });
            line.push(`${name} ${(cpuUs / burst).toFixed(1)}`);
          }
          log?.(`  ${app} set ${set + 1}/${instances} round ${results[names[0]].length}/${rounds}: ${line.join(', ')} µs CPU/request`);
        }
      } finally {
        driver.forget(Object.values(servers).map((server) => server.port));
        for (const { child } of Object.values(servers)) await stopServer(child);
      }
    }
  } finally {
    await driver.stop();
  }
  return Object.fromEntries(names.map((name) => [name, Object.assign(results[name], { warmupUs: warmups[name] })]));
}
