// Scale: 100,000 open responses held at once. Memory per open response and the cost of one
// deadline sweep with nothing due (which must not grow with the number open). See
// lib/scale-child.mjs for how the responses are made and why they have no sockets.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const title = 'Scale: 100,000 open responses';

const child = fileURLToPath(new URL('./lib/scale-child.mjs', import.meta.url));
const fmt = (t) => `${t.median.toFixed(0)} (${t.min.toFixed(0)}–${t.max.toFixed(0)})`;

export async function run({ log, open = 100_000 } = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', child], { env: { ...process.env, SCALE_OPEN: String(open) }, maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout);
  log?.(`  scale: ${r.bytesPerOpen.toFixed(0)} bytes per open response, sweep at ${open} open ${r.sweeps[open].median.toFixed(0)} ns`);
  const worst = Math.max(...Object.values(r.sweeps).map((t) => t.max));
  const lines = [
    `### ${title}`,
    '',
    `In one process (\`--expose-gc\`), ${r.open.toLocaleString('en')} real \`http.ServerResponse\` objects (each over an \`IncomingMessage\`) followed through leakwatch's node:http path (\`trackResponse\`: a record in the ledger's deadline queue, a Symbol on the response, a \`'close'\` listener) and left open. They have no sockets: ${r.open.toLocaleString('en')} in-flight requests over real sockets would need ${(2 * r.open).toLocaleString('en')} descriptors and more memory and time than a benchmark on this 2-core machine can spend, so this measures leakwatch's own state, which is what grows with the number open.`,
    '',
    `- **Memory per open response**: ${r.bytesPerOpen.toFixed(0)} bytes of heap (heap after following them minus heap before, after full collections: ${r.beforeMb.toFixed(1)} → ${r.afterMb.toFixed(1)} MB for ${r.open.toLocaleString('en')}).`,
    '',
    'One deadline sweep with nothing due (what the timer runs), in a ledger holding N open responses started over one second; mean ns per sweep over 100,000 sweeps, median of 7 (min–max):',
    '',
    '| open responses | ns per sweep, nothing due |',
    '| --- | --- |',
    ...Object.entries(r.sweeps).map(([n, t]) => `| ${Number(n).toLocaleString('en')} | ${fmt(t)} |`),
    '',
    `Target under 1 ms at ${r.open.toLocaleString('en')} open: ${worst < 1e6 ? 'met' : 'missed'} (worst ${worst.toFixed(0)} ns); the sweep looks only at the head of a list sorted by due time, so it does not grow with the number open. A sweep that finds ${r.dueFound.toLocaleString('en')} due (stalled, so each becomes a leak and is described for the report) took ${(r.dueSweepNs / 1e6).toFixed(2)} ms: its cost is per item due.`,
  ];
  return { markdown: lines.join('\n'), figures: r };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log((await run({ log: (l) => process.stderr.write(l + '\n') })).markdown);
