// leakwatch's share of a server's main-thread CPU time, sampled by Linux perf: a profiler for
// changes to leakwatch's own code, not a section of `npm run bench`. Needs `perf` (Debian:
// linux-perf) and a kernel that lets root sample a process.
//
//   npm run build && .ci/cache/node-24/bin/node bench/cpu-share.mjs [--app=realistic|hello]
//     [--mode=default|lean|metrics] [--warmup=N] [--requests=N] [--top=N]
//
// Why beside bench/instructions.mjs: that one counts instructions, which a cache miss does not
// add to, and a hot loop in a microbenchmark keeps every cache warm. Between two requests' worth
// of the app's code, V8's C++ runtime calls leakwatch makes run cold: on the realistic endpoint
// the res.end replacement's `Function.prototype.toString` and the comparison of its text took
// about 0.3 and 0.2 µs a request here, against 0.1 µs for both in a hot loop and about 500
// instructions each. Sampling time shows that; counting instructions does not.
//
// The server (lib/realistic-server.cjs) runs with `--perf-basic-prof`, so the samples name the
// JIT code. After the warm-up, perf samples its threads at 4999 Hz while lib/load.mjs sends the
// requests (8 in flight). A sample of the main thread is leakwatch's own when its innermost frame
// is a function of dist/, and a callee of leakwatch's when its innermost frames are V8's builtins,
// runtime, C++ or the kernel and the first JavaScript frame above them is leakwatch's. Not seen:
// leakwatch's code V8 inlined into the app's functions (counted as theirs), and what leakwatch
// costs the app's code (garbage collection, hidden-class changes). Read shares within one run;
// which functions V8 inlines differs from one server process to the next (the total moved from
// 2.4 % to 2.8 % between three processes of one build).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cliFlags } from './lib/cli-flags.mjs';
import { freePort, LOAD, REGISTER, servicesEnv, startServer, stopServer } from './lib/http-bench.mjs';

const SERVER = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const OWN = path.join(fileURLToPath(new URL('..', import.meta.url)), 'dist') + path.sep;
const APPS = { realistic: { path: '/items/42', warmup: 25_000, requests: 20_000 }, hello: { path: '/', warmup: 60_000, requests: 100_000 } };
const MODES = {
  default: async () => ({}),
  lean: async () => ({ LEAKWATCH_ACQUIRE_STACK_FRAMES: '0', LEAKWATCH_END_ATTRIBUTION: 'false' }),
  metrics: async () => ({ LEAKWATCH_METRICS_PORT: String(await freePort()) }),
};
const HZ = 4999;
const exec = promisify(execFile);

function usage(message) {
  process.stderr.write(`${message}\nusage: node bench/cpu-share.mjs [--app=realistic|hello] [--mode=default|lean|metrics] [--warmup=N] [--requests=N] [--top=N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const { flag, count } = cliFlags(args, usage);
for (const arg of args) if (!/^--(app|mode|warmup|requests|top)=/.test(arg)) usage(`unknown argument ${JSON.stringify(arg)}`);
const appName = flag('app') ?? 'realistic';
const modeName = flag('mode') ?? 'default';
const app = Object.hasOwn(APPS, appName) ? APPS[appName] : usage(`unknown --app ${JSON.stringify(appName)}`);
const modeEnv = Object.hasOwn(MODES, modeName) ? MODES[modeName] : usage(`unknown --mode ${JSON.stringify(modeName)}`);
const warmup = count('warmup', app.warmup);
const requests = count('requests', app.requests);
const top = count('top', 15);

try {
  await exec('perf', ['--version']);
} catch {
  usage('bench/cpu-share.mjs needs perf (Debian: apt-get install linux-perf)');
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-cpu-share-'));
const data = path.join(dir, 'perf.data');
const mode = { execArgv: ['--perf-basic-prof', '--interpreted-frames-native-stack', '--import', REGISTER], env: { ...servicesEnv(), ...(await modeEnv()) } };
// V8 logs the code it makes (what --perf-basic-prof needs) to isolate-*-v8.log in the working directory.
const { child, port } = await startServer({ mode, app: appName, script: SERVER, cwd: dir });
const load = (n) => exec(process.execPath, [LOAD, String(port), app.path, String(n), '8'], { maxBuffer: 1 << 20 });
let text;
try {
  await load(warmup);
  const perf = spawn('perf', ['record', '-F', String(HZ), '-g', '-e', 'cpu-clock', '-o', data, '-p', String(child.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let perfErr = '';
  perf.stderr.on('data', (chunk) => (perfErr += chunk));
  const perfExit = new Promise((resolve) => perf.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500)); // perf attaches
  await load(requests);
  perf.kill('SIGINT');
  if ((await perfExit) !== 0 && !readable(data)) throw new Error(`perf record failed: ${perfErr.trim()}`);
  ({ stdout: text } = await exec('perf', ['script', '-i', data, '-F', 'tid,ip,sym,dso'], { maxBuffer: 1 << 30 }));
} finally {
  await stopServer(child);
  rmSync(dir, { recursive: true, force: true });
  rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
}

function readable(file) {
  try {
    return readFileSync(file).length > 0;
  } catch {
    return false;
  }
}

/** perf script's samples: {tid, frames: [innermost first]}. */
function samplesOf(output) {
  const samples = [];
  let sample = null;
  for (const line of output.split('\n')) {
    const head = /^\s*(\d+)\s*$/.exec(line);
    if (head !== null) {
      samples.push((sample = { tid: head[1], frames: [] }));
      continue;
    }
    const frame = /^\s+[0-9a-f]+\s+(.*)\s+\(.*\)$/.exec(line);
    if (frame !== null && sample !== null) sample.frames.push(frame[1]);
  }
  return samples;
}

const samples = samplesOf(text);
const perThread = new Map();
for (const s of samples) perThread.set(s.tid, (perThread.get(s.tid) ?? 0) + 1);
const mainTid = String(child.pid);
const main = samples.filter((s) => s.tid === mainTid);
const isJs = (frame) => frame.startsWith('JS:');
const isOwn = (frame) => isJs(frame) && frame.includes(OWN);
const short = (frame) => frame.replace(OWN, '').replace(/^JS:/, '');
const self = new Map();
const callees = new Map();
const callers = new Map();
let own = 0;
let called = 0;
for (const { frames } of main) {
  if (frames.length === 0) continue;
  if (isJs(frames[0])) {
    if (isOwn(frames[0])) {
      own++;
      self.set(frames[0], (self.get(frames[0]) ?? 0) + 1);
    }
    continue;
  }
  const js = frames.find(isJs);
  if (js === undefined || !isOwn(js)) continue;
  called++;
  callees.set(frames[0], (callees.get(frames[0]) ?? 0) + 1);
  callers.set(js, (callers.get(js) ?? 0) + 1);
}

const n = main.length;
const share = (count) => `${((100 * count) / n).toFixed(2)} %`;
const perRequest = (count) => `${(((count / HZ) * 1e6) / requests).toFixed(2)} µs`;
const list = (map) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, count]) => `  ${String(count).padStart(6)}  ${share(count).padStart(7)}  ${perRequest(count).padStart(9)}  ${short(name).slice(0, 110)}`);
const others = samples.length - main.length;
console.log(
  [
    `CPU time sampled by perf at ${HZ} Hz, ${appName} endpoint, leakwatch ${modeName}, Node ${process.versions.node}: ${requests} requests after ${warmup} uncounted`,
    `main thread: ${n} samples, ${perRequest(n)} a request (other threads: ${others} samples)`,
    `leakwatch: ${share(own + called)} of the main thread, ${perRequest(own + called)} a request: its own functions ${share(own)}, what they call outside leakwatch ${share(called)}`,
    `leakwatch's own functions (innermost frame):`,
    ...list(self),
    `what they call (innermost frame: V8's builtins and runtime, C++, the kernel):`,
    ...list(callees),
    `the leakwatch functions those samples are under:`,
    ...list(callers),
  ].join('\n'),
);
