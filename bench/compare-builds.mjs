// CPU per pg checkout of this build of leakwatch against another build (another commit, checked out
// and built elsewhere), each measurement in a fresh process, the two alternating:
//
//   git archive main | tar -x -C /tmp/leakwatch-main && ln -s "$PWD/node_modules" /tmp/leakwatch-main/
//   (cd /tmp/leakwatch-main && npx tsc -p tsconfig.build.json)
//   npm run build && node bench/compare-builds.mjs /tmp/leakwatch-main [rounds] [--metrics]
//
// Prints the medians and the median of per-round differences (this − other). For a change on the
// checkout path whose cost is far below the spread of a checkout over a real connection.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, summary } from './lib/stats.mjs';

const [other, roundsArg, ...flags] = process.argv.slice(2);
if (other === undefined) {
  process.stderr.write('usage: node bench/compare-builds.mjs OTHER_BUILD_ROOT [ROUNDS] [--metrics]\n');
  process.exit(2);
}
const roots = { this: fileURLToPath(new URL('..', import.meta.url)), other };
const rounds = Number(roundsArg ?? 11);
const metrics = flags.includes('--metrics') ? '1' : '0';
const child = fileURLToPath(new URL('./lib/checkout-child.mjs', import.meta.url));
const figures = { this: [], other: [] };
for (let round = 0; round < rounds; round++) {
  for (const name of round % 2 ? ['other', 'this'] : ['this', 'other']) {
    const out = execFileSync(process.execPath, [child], { env: { ...process.env, LEAKWATCH_ROOT: roots[name], METRICS: metrics } }).toString();
    figures[name].push(JSON.parse(out).us);
  }
  process.stderr.write(`round ${round + 1}/${rounds}: this ${figures.this.at(-1).toFixed(1)} µs, other ${figures.other.at(-1).toFixed(1)} µs\n`);
}
const added = figures.this.map((us, i) => us - figures.other[i]);
console.log(`CPU µs per checkout (10-frame stacks${metrics === '1' ? ', metrics' : ''}), median (min–max) of ${rounds} rounds:`);
console.log(`  this build  ${summary(figures.this)}`);
console.log(`  other build ${summary(figures.other)}`);
console.log(`  this − other, per round: ${summary(added)} (median ${median(added).toFixed(1)})`);
