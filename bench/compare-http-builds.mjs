// CPU per request of this build of leakwatch against another build (another commit, checked out
// and built elsewhere), with a bare server beside them, side by side (lib/http-bench.mjs's
// compareSideBySide): one server per build and a bare one in each set, all loaded at once, the
// order of the three rotated from set to set.
//
//   git worktree add /tmp/leakwatch-other <commit> && ln -s "$PWD/node_modules" /tmp/leakwatch-other/
//   (cd /tmp/leakwatch-other && npx tsc -p tsconfig.build.json)
//   npm run build && node bench/compare-http-builds.mjs /tmp/leakwatch-other [--app=hello|realistic]
//     [--sets=6] [--rounds=30] [--burst=N] [--warmup=N] [--same]
//
// Run it with the Node to measure (`.ci/cache/node-24/bin/node bench/…`). --same loads this build in
// both slots: what two servers of the same code differ by (an A/A run), the resolution to hold a
// difference against. Prints both builds' medians against bare and the per-round difference.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliFlags } from './lib/cli-flags.mjs';
import { compareSideBySide, servicesEnv } from './lib/http-bench.mjs';
import { median, summary } from './lib/stats.mjs';

const APPS = {
  hello: { path: '/hello?x=1', burst: 3_000, warmup: 40_000 },
  realistic: { path: '/items/42?color=red', burst: 800, warmup: 20_000 },
};

function usage(message) {
  process.stderr.write(`${message}\nusage: node bench/compare-http-builds.mjs OTHER_BUILD_ROOT [--app=hello|realistic] [--sets=N] [--rounds=N] [--burst=N] [--warmup=N] [--same]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const other = args.find((a) => !a.startsWith('--'));
const { flag, count } = cliFlags(args, usage);
if (other === undefined) usage('the other build is missing');
const same = args.includes('--same');
const here = fileURLToPath(new URL('..', import.meta.url));
const register = (root) => path.join(root, 'dist', 'register.js');
if (!same && !existsSync(register(path.resolve(other)))) usage(`${register(path.resolve(other))} does not exist: build that checkout first`);
if (!existsSync(register(here))) usage(`${register(here)} does not exist: npm run build first`);
const appName = flag('app') ?? 'hello';
const app = APPS[appName];
if (app === undefined) usage(`--app must be hello or realistic, not ${JSON.stringify(appName)}`);
const sets = count('sets', 6);
const rounds = count('rounds', 30);
if (rounds < sets) usage(`--rounds (${rounds}) must be at least --sets (${sets})`);

const env = servicesEnv();
const modes = {
  bare: { execArgv: [], env },
  this: { execArgv: ['--import', register(here)], env },
  other: { execArgv: ['--import', register(same ? here : path.resolve(other))], env },
};
const results = await compareSideBySide({
  modes,
  app: appName,
  script: fileURLToPath(new URL('./lib/realistic-server.cjs', import.meta.url)),
  path: app.path,
  rounds,
  burst: count('burst', app.burst),
  warmup: count('warmup', app.warmup),
  instances: sets,
  concurrency: 8,
  log: (line) => process.stderr.write(line + '\n'),
});
const cpu = (name) => results[name].map((f) => f.cpuUsPerRequest);
const bare = cpu('bare');
console.log(`${appName} on Node ${process.versions.node}, ${rounds} rounds in ${sets} sets${same ? ' (--same: this build in both slots)' : ''}; CPU µs per request, median (min–max):`);
for (const name of ['this', 'other']) {
  const mine = cpu(name);
  console.log(`  ${name.padEnd(5)} build ${summary(mine)}; efficiency against bare ${summary(mine.map((us, i) => bare[i] / us), 3)}`);
}
const difference = cpu('this').map((us, i) => us - cpu('other')[i]);
console.log(`  this − other, per round: ${summary(difference)} µs (median ${median(difference).toFixed(2)}); bare ${summary(bare)}`);
