// Instructions per request, counted by valgrind's callgrind, and where leakwatch's are spent: a
// profiler for changes to leakwatch's own code, not a section of `npm run bench`.
//
//   npm run build && .ci/cache/node-24/bin/node bench/instructions.mjs [--app=realistic|hello]
//     [--modes=bare,default,lean,metrics,als,floor] [--other=OTHER_BUILD_ROOT] [--warmup=N] [--requests=N] [--top=N]
//     [--callers=NAME,NAME] [--branches]
//
// Each mode's server (lib/realistic-server.cjs, the endpoints of the realistic section) runs under
// callgrind with its counters off through the warm-up, then counts a fixed number of requests
// (8 in flight, lib/load.mjs), all threads apart. With `--perf-basic-prof` V8 names the code it
// compiles, so each function's own instructions (self: not what it calls) can be summed by name:
// leakwatch's functions, and the functions of the main thread whose count moved most from the
// bare server's (what leakwatch's presence costs outside its own code: builtins it calls, Node's
// diagnostics channel, garbage collection).
//
// What to trust: the counts are exact for the process counted, but what that process runs depends
// on what V8 did in it, which differs between processes of the same code: which functions it
// optimized fully (`*` in a name; `+` is Maglev's quicker code, `^` Sparkplug's, `~` the
// interpreter), when it collected garbage, and how the hidden classes of the app's objects settled.
// Two servers of one build gave 1.3k and 1.5k instructions a request in leakwatch's own functions on
// hello world (the second had left openResponse in Maglev code) and 4.0k and 4.1k on the realistic
// endpoint; their totals differed by up to 3k on hello world and by up to 45k on the realistic
// endpoint, where one bare server spent about 30k a request more than the others in V8's runtime,
// changing and migrating the hidden classes of the app's objects (Express re-prototypes req and res
// on every request). So read function by function, check the tier marks, and count twice before
// believing a total. The other threads' counts (V8's concurrent marking and sweeping, its
// optimizing compilers) are listed apart, function by function against bare's: over a few thousand
// requests they mostly say whether a major collection fell in the counted window (two counts of
// the same build gave +27k and −6k a request against bare in all threads, the main thread's own
// differing by under 9k), not what leakwatch costs. And instructions are not time: a cache miss
// costs none, and a clock read runs more instructions under valgrind than natively. The CPU figures are the realistic and
// http sections'.
// Modes: bare; default (this build, defaults); lean (this build, acquisition stacks and res.end
// attribution off); metrics (defaults, plus LEAKWATCH_METRICS_PORT: metrics fed, nothing scrapes);
// als (one AsyncLocalStorage store per request, nothing else); floor (the least any tool pays that
// follows every response, pg checkout and Redis command to its request: lib/follow-floor.mjs);
// other (the build at --other, defaults: another commit, built as bench/compare-http-builds.mjs
// says).
// --callers: for each function whose name contains one of NAMEs (`LoadIC_Megamorphic`, `publish`),
// the main thread's callers of it in each mode, inclusive, against bare's: who pays for a builtin
// whose count moved outside leakwatch's own functions.
// --branches: counts mispredicted branches (conditional and indirect, callgrind's branch simulator,
// --branch-sim=yes) instead of instructions, in every figure. A mispredicted branch costs a modern
// core 15–20 cycles, and instructions do not show it: on hello world leakwatch's defaults added
// about 4.6k instructions a request and 160 mispredicted branches on the main thread, few of them in
// leakwatch's own functions (the simulator is a simple model of a predictor, not this machine's).
import { execFile, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cliFlags } from './lib/cli-flags.mjs';
import { cleanEnv, freePort, LOAD, request, servicesEnv } from './lib/http-bench.mjs';

const SERVER = fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url));
const ALS_ONLY = fileURLToPath(new URL('./lib/als-only.mjs', import.meta.url));
const FLOOR = fileURLToPath(new URL('./lib/follow-floor.mjs', import.meta.url));
const HERE = fileURLToPath(new URL('..', import.meta.url));
const APPS = {
  realistic: { path: '/items/42', warmup: 15_000, requests: 3_000 },
  hello: { path: '/', warmup: 30_000, requests: 10_000 },
};
const exec = promisify(execFile);

function usage(message) {
  process.stderr.write(`${message}\nusage: node bench/instructions.mjs [--app=realistic|hello] [--modes=bare,default,lean,metrics,als,floor,other] [--other=OTHER_BUILD_ROOT] [--warmup=N] [--requests=N] [--top=N] [--callers=NAME,NAME] [--branches]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const { flag, count } = cliFlags(args, usage);
for (const arg of args) if (!/^--(app|modes|other|warmup|requests|top|callers)=|^--branches$/.test(arg)) usage(`unknown argument ${JSON.stringify(arg)}`);
const appName = flag('app') ?? 'realistic';
const app = APPS[appName];
if (app === undefined) usage(`--app must be realistic or hello, not ${JSON.stringify(appName)}`);
const other = flag('other');
const register = (root) => path.join(root, 'dist', 'register.js');
const MODES = {
  bare: { execArgv: [], env: {} },
  default: { execArgv: ['--import', register(HERE)], env: {} },
  lean: { execArgv: ['--import', register(HERE)], env: { LEAKWATCH_ACQUIRE_STACK_FRAMES: '0', LEAKWATCH_END_ATTRIBUTION: 'false' } },
  // The port is picked as its server starts: minutes can pass between modes.
  metrics: { execArgv: ['--import', register(HERE)], env: async () => ({ LEAKWATCH_METRICS_PORT: String(await freePort()) }) },
  als: { execArgv: ['--import', ALS_ONLY], env: {} },
  floor: { execArgv: ['--import', FLOOR], env: {} },
  other: { execArgv: ['--import', register(path.resolve(other ?? '.'))], env: {} },
};
const modes = (flag('modes') ?? (other === undefined ? 'bare,default' : 'bare,default,other')).split(',');
for (const mode of modes) if (MODES[mode] === undefined) usage(`--modes: no mode ${JSON.stringify(mode)} (bare, default, lean, metrics, als, floor, other)`);
if (!modes.includes('bare')) usage('--modes must include bare: every figure is read against it');
if (modes.includes('other') && other === undefined) usage('mode other needs --other=OTHER_BUILD_ROOT');
if (other !== undefined && !existsSync(register(path.resolve(other)))) usage(`${register(path.resolve(other))} does not exist: build that checkout first`);
if (!existsSync(register(HERE))) usage(`${register(HERE)} does not exist: npm run build first`);
const warmup = count('warmup', app.warmup);
const requests = count('requests', app.requests);
const top = count('top', 15);
const callersOf = (flag('callers') ?? '').split(',').filter((name) => name !== '');
const branches = args.includes('--branches');
/** The callgrind events counted (summed) in every figure. */
const EVENTS = branches ? ['Bcm', 'Bim'] : ['Ir'];
const counted = branches ? 'Mispredicted branches (conditional and indirect; callgrind --branch-sim)' : 'Instructions';
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  usage('valgrind is not on PATH (apt-get install valgrind)');
}

/**
 * Self instructions per function name, from one callgrind output file, and the inclusive
 * instructions of each call from one function to another (`calls` lines: caller → callee → cost).
 */
function selfCosts(file) {
  const names = new Map();
  const costs = new Map();
  const calls = new Map();
  let fn = null;
  let callee = null;
  let inCall = false;
  let columns = [1];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('events: ')) {
      columns = eventColumns(line);
    } else if (line.startsWith('fn=')) {
      const m = /^fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (m[2] !== undefined) names.set(m[1], m[2]);
      fn = names.get(m[1]);
    } else if (line.startsWith('cfn=')) {
      const m = /^cfn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (m?.[2] !== undefined) names.set(m[1], m[2]);
      callee = m === null ? null : (names.get(m[1]) ?? null);
    } else if (line.startsWith('calls=')) {
      inCall = true;
    } else if (/^[0-9+\-*]/.test(line)) {
      const parts = line.split(' ');
      // A cost line leaves out trailing zero columns.
      let cost = 0;
      for (const c of columns) cost += Number(parts[c] ?? 0);
      if (inCall) {
        inCall = false;
        if (fn === null || callee === null || !Number.isFinite(cost)) continue;
        let byCallee = calls.get(fn);
        if (byCallee === undefined) calls.set(fn, (byCallee = new Map()));
        byCallee.set(callee, (byCallee.get(callee) ?? 0) + cost);
        continue;
      }
      if (fn !== null && Number.isFinite(cost)) costs.set(fn, (costs.get(fn) ?? 0) + cost);
    }
  }
  return Object.assign(costs, { calls });
}

/** The positions of EVENTS on a cost line (position first, then one column per event), from the `events:` header. */
function eventColumns(header) {
  const names = header.slice('events: '.length).trim().split(' ');
  return EVENTS.map((event) => {
    const i = names.indexOf(event);
    if (i < 0) throw new Error(`callgrind counted no ${event} (events: ${names.join(' ')})`);
    return i + 1;
  });
}

/** A file's total of EVENTS, from its `summary:` or `totals:` line. */
function fileTotal(text) {
  const columns = eventColumns(/^events: .*$/m.exec(text)?.[0] ?? 'events: ');
  const line = /^(?:summary|totals): (.*)$/m.exec(text);
  if (line === null) return Number.NaN;
  const values = line[1].split(' '); // trailing zero columns left out
  return columns.reduce((sum, c) => sum + Number(values[c - 1] ?? 0), 0);
}

/** V8's code map (`--perf-basic-prof`): sorted [start, end, name]. */
function codeMap(file) {
  const rows = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) rows.push([parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  return rows.sort((a, b) => a[0] - b[0]);
}

function nameAt(rows, address) {
  let lo = 0;
  let hi = rows.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid][0] <= address) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = found; i >= 0 && i > found - 50; i--) if (address < rows[i][1]) return rows[i][2];
  return null;
}

/** The name of a function of one count: JIT code addresses named with V8's code map; native functions keep theirs. */
function nameOf(fn, rows) {
  const m = /^0x([0-9a-f]+)/.exec(fn);
  return (m ? nameAt(rows, parseInt(m[1], 16)) : null) ?? fn;
}

/** Names the JIT code addresses of one count with V8's code map; native functions keep theirs. */
function named(costs, rows) {
  const byName = new Map();
  for (const [fn, cost] of costs) {
    const name = nameOf(fn, rows);
    byName.set(name, (byName.get(name) ?? 0) + cost);
  }
  return byName;
}

/**
 * What leakwatch's own functions call outside leakwatch, inclusive (a callee's own calls counted
 * in), by callee: V8's builtins and runtime, and Node's own functions (`node:`). Calls into the
 * app's or a library's code (a wrapper calling what it wraps) are left out, and so is what V8
 * inlined (it is in the caller's own count).
 */
function ownCallees(calls, rows) {
  const byCallee = new Map();
  for (const [fn, callees] of calls) {
    const caller = nameOf(fn, rows);
    if (ownFile(caller) === null) continue;
    for (const [callee, cost] of callees) {
      const name = nameOf(callee, rows);
      // A wrapper's call of what it wraps goes through Call* trampolines: the library's code, not leakwatch's.
      if (ownFile(name) !== null || (name.startsWith('JS:') && !/ node:/.test(name)) || /^Builtins_Call(?!ApiCallback)/.test(name)) continue;
      let entry = byCallee.get(name);
      if (entry === undefined) byCallee.set(name, (entry = { cost: 0, callers: new Map() }));
      entry.cost += cost;
      entry.callers.set(caller, (entry.callers.get(caller) ?? 0) + cost);
    }
  }
  return byCallee;
}

/** For each name of --callers: the inclusive cost of the calls into functions whose name contains it, by caller. */
function callersIn(calls, rows) {
  const byName = new Map(callersOf.map((name) => [name, new Map()]));
  if (callersOf.length === 0) return byName; // every call edge's name resolved for nothing
  for (const [fn, callees] of calls) {
    for (const [callee, cost] of callees) {
      const calleeName = nameOf(callee, rows);
      for (const name of callersOf) {
        if (!calleeName.includes(name)) continue;
        const byCaller = byName.get(name);
        const caller = nameOf(fn, rows);
        byCaller.set(caller, (byCaller.get(caller) ?? 0) + cost);
      }
    }
  }
  return byName;
}

/** The builds' dist/ folders: a function whose name holds one of them is leakwatch's own. */
const ownRoots = [HERE, ...(other === undefined ? [] : [path.resolve(other)])].map((root) => path.join(root, 'dist') + path.sep);
/** The file of one of leakwatch's own functions, relative to dist/ (`pg/checkout.js:53:12`); null for anyone else's. */
const ownFile = (name) => {
  for (const root of ownRoots) if (name.includes(root)) return name.slice(name.indexOf(root) + root.length);
  return null;
};
const shortName = (name) => {
  for (const root of ownRoots) if (name.includes(root)) return name.replace(root, '');
  return name.replace(path.join(HERE, 'node_modules') + path.sep, '');
};

/** One mode's server under callgrind: `warmup` requests uncounted, then `requests` counted. */
async function countOne(name, dir) {
  const mode = MODES[name];
  const modeEnv = typeof mode.env === 'function' ? await mode.env() : mode.env;
  const out = path.join(dir, `${name}.out`);
  const child = fork(SERVER, [], {
    execPath: 'valgrind',
    execArgv: ['--tool=callgrind', ...(branches ? ['--branch-sim=yes'] : []), '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${out}`, process.execPath, '--perf-basic-prof', ...mode.execArgv],
    env: { ...cleanEnv(), ...modeEnv, BENCH_APP: appName, ...servicesEnv() },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // V8 logs the code it makes (what --perf-basic-prof needs) to isolate-*-v8.log in the working directory.
    cwd: dir,
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const codeMapFile = `/tmp/perf-${child.pid}.map`;
  try {
    const { port } = await request(child, null, 'port', 600_000).catch((error) => {
      throw new Error(`${name}: ${error.message}\n${stderr}`);
    });
    const load = (n) => exec(process.execPath, [LOAD, String(port), app.path, String(n), '8'], { maxBuffer: 1 << 20 });
    await load(warmup);
    await exec('callgrind_control', ['--zero', String(child.pid)]);
    await load(requests);
    await exec('callgrind_control', ['--dump', String(child.pid)]);
    const prefix = `${name}.out.1-`;
    const files = readdirSync(dir).filter((f) => f.startsWith(prefix));
    if (!files.includes(`${prefix}01`)) throw new Error(`${name}: callgrind wrote no count of the main thread (${files.join(', ') || 'no files'})`);
    let all = 0;
    for (const f of files) all += fileTotal(readFileSync(path.join(dir, f), 'utf8'));
    const rows = codeMap(codeMapFile);
    const mainCosts = selfCosts(path.join(dir, `${prefix}01`));
    const main = named(mainCosts, rows);
    const callees = new Map([...ownCallees(mainCosts.calls, rows)].map(([fn, { cost, callers }]) => [fn, { cost: cost / requests, callers: [...callers].sort((a, b) => b[1] - a[1]).map(([caller, c]) => [caller, c / requests]) }]));
    const callers = callersIn(mainCosts.calls, rows);
    let mainTotal = 0;
    for (const cost of main.values()) mainTotal += cost;
    // The other threads (V8's compilers and garbage collector helpers, libuv's pool): native code
    // only, so their functions keep their own names; summed over the threads.
    const others = new Map();
    for (const f of files.filter((f) => f !== `${prefix}01`)) {
      for (const [fn, cost] of selfCosts(path.join(dir, f))) others.set(fn, (others.get(fn) ?? 0) + cost / requests);
    }
    return { all: all / requests, main: mainTotal / requests, functions: new Map([...main].map(([fn, cost]) => [fn, cost / requests])), others, callees, callers };
  } finally {
    child.kill('SIGKILL');
    rmSync(codeMapFile, { force: true });
  }
}

// Mispredicted branches run to hundreds a request: whole numbers, not thousands.
const k = (x) => (branches ? x.toFixed(0) : `${(x / 1000).toFixed(1)}k`);
const signed = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(0)}`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-callgrind-'));
const results = {};
try {
  process.stderr.write(`instructions: ${appName} on Node ${process.versions.node}, ${warmup} requests uncounted then ${requests} counted, modes ${modes.join(', ')}\n`);
  const queue = [...modes];
  // Two servers at a time: a count does not depend on what else runs, only its wall time does.
  const worker = async () => {
    for (let mode = queue.shift(); mode !== undefined; mode = queue.shift()) {
      const started = Date.now();
      results[mode] = await countOne(mode, dir);
      process.stderr.write(`instructions: ${mode} counted in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
  };
  await Promise.all([worker(), worker()]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const ownOf = (r) => [...r.functions].filter(([fn]) => ownFile(fn) !== null);
const ownTotal = (r) => ownOf(r).reduce((sum, [, cost]) => sum + cost, 0);
const bare = results.bare;
const lines = [
  `${counted} per request, ${appName} endpoint, Node ${process.versions.node} (callgrind; ${warmup} requests uncounted, then ${requests} counted)`,
  '',
  '| mode | all threads | main thread | against bare (all threads) | in leakwatch\'s own functions (self, main thread) |',
  '| --- | --- | --- | --- | --- |',
  ...modes.map((mode) => {
    const r = results[mode];
    return `| ${mode} | ${k(r.all)} | ${k(r.main)} | ${mode === 'bare' ? '—' : `${signed(r.all - bare.all)} (bare ÷ mode ${(bare.all / r.all).toFixed(3)})`} | ${mode === 'bare' ? '—' : k(ownTotal(r))} |`;
  }),
];
for (const mode of modes.filter((m) => m !== 'bare')) {
  const r = results[mode];
  const own = ownOf(r).sort((a, b) => b[1] - a[1]);
  const byFolder = new Map();
  for (const [fn, cost] of own) {
    const folder = ownFile(fn).split(/[/:]/)[0];
    byFolder.set(folder, (byFolder.get(folder) ?? 0) + cost);
  }
  const moved = [...new Set([...r.functions.keys(), ...bare.functions.keys()])]
    .filter((fn) => ownFile(fn) === null)
    .map((fn) => [fn, (r.functions.get(fn) ?? 0) - (bare.functions.get(fn) ?? 0)])
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    .slice(0, top);
  lines.push(
    '',
    `${mode}: leakwatch's own functions, ${k(ownTotal(r))} a request (${[...byFolder].sort((a, b) => b[1] - a[1]).map(([f, c]) => `${f} ${c.toFixed(0)}`).join(', ')}):`,
    ...own.filter(([, cost]) => cost >= 1).slice(0, top).map(([fn, cost]) => `  ${cost.toFixed(0).padStart(7)}  ${shortName(fn)}`),
    `${mode}: what leakwatch's own functions call outside leakwatch (inclusive; V8's builtins and runtime, Node's own functions; not the code a wrapper wraps), ${k([...r.callees.values()].reduce((a, b) => a + b.cost, 0))} a request, with the callers that spend most in each:`,
    ...[...r.callees]
      .sort((a, b) => b[1].cost - a[1].cost)
      .filter(([, { cost }]) => cost >= 1)
      .slice(0, top)
      .map(([fn, { cost, callers }]) => `  ${cost.toFixed(0).padStart(7)}  ${shortName(fn).slice(0, 100)} ← ${callers.slice(0, 3).map(([caller, c]) => `${shortName(caller).replace(/^JS:\W*/, '')} ${c.toFixed(0)}`).join(', ')}`),
    `${mode}: other functions of the main thread, the ${top} whose count moved most against bare's:`,
    ...moved.map(([fn, diff]) => `  ${signed(diff).padStart(7)}  ${shortName(fn).slice(0, 150)}`),
    `${mode}: the other threads, ${signed(r.all - r.main - (bare.all - bare.main))} against bare's; the ${top} functions whose count moved most:`,
    ...[...new Set([...r.others.keys(), ...bare.others.keys()])]
      .map((fn) => [fn, (r.others.get(fn) ?? 0) - (bare.others.get(fn) ?? 0)])
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .slice(0, top)
      .map(([fn, diff]) => `  ${signed(diff).padStart(7)}  ${fn.slice(0, 150)}`),
  );
}
for (const name of callersOf) {
  lines.push('', `callers of functions named *${name}* (main thread, inclusive, per request), the ${top} whose count moved most against bare's:`);
  for (const mode of modes.filter((m) => m !== 'bare')) {
    const r = results[mode].callers.get(name);
    const b = bare.callers.get(name);
    const rows = [...new Set([...r.keys(), ...b.keys()])]
      .map((caller) => [caller, (r.get(caller) ?? 0) / requests, (b.get(caller) ?? 0) / requests])
      .sort((x, y) => Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2]))
      .slice(0, top);
    lines.push(`${mode}:`, ...rows.map(([caller, c, bc]) => `  ${signed(c - bc).padStart(7)}  (${c.toFixed(0)} against ${bc.toFixed(0)})  ${shortName(caller).slice(0, 130)}`));
  }
}
console.log(lines.join('\n'));
