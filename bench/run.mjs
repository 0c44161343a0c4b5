// `npm run bench`: runs every bench/*.bench.mjs and writes bench/results.md.
//
// The CPU-overhead sections (PER_LINE) run once per Node line, Node 24 (the primary target, as CI
// gets it) and Node 20 (this machine's) by default, one line after the other section by section;
// the others run once, on the first line. Each section runs in a child process started with that
// line's Node (lib/line-runner.mjs), so its servers and load processes run on it too.
//
//   node bench/run.mjs                       everything, both lines; writes bench/results.md
//   node bench/run.mjs realistic http        the sections whose file names start so; prints only
//   node bench/run.mjs --lines=24 realistic  one line (or BENCH_NODE_LINES=24); prints only
//   BENCH_OPTIONS='{"realistic":{"realistic":{"rounds":7,"burst":300,"warmup":1000}}}'
//                                            overrides a section's run() options (a short run); prints only
// Lines: see lib/node-lines.mjs (BENCH_NODE_<MAJOR>=/path/to/node gives a line's binary).
import { fork } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LINES, linesAsked, nodeFor } from './lib/node-lines.mjs';
import { targetsSection } from './lib/targets.mjs';

/** Sections measured on every Node line: what leakwatch adds to a request, a checkout, a command. */
const PER_LINE = new Set(['http', 'ledger', 'pg', 'realistic', 'redis']);

const here = fileURLToPath(new URL('.', import.meta.url));
const runner = fileURLToPath(new URL('./lib/line-runner.mjs', import.meta.url));
const log = (line) => process.stderr.write(line + '\n');
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
const sectionName = (file) => file.replace('.bench.mjs', '');

let lines;
let nodes;
try {
  lines = linesAsked(args);
  if (process.env.BENCH_OPTIONS) JSON.parse(process.env.BENCH_OPTIONS);
  // Every line's Node is found (or fetched) before anything runs, so a missing one fails at once.
  const needed = files.some((f) => PER_LINE.has(sectionName(f))) ? lines : lines.slice(0, 1);
  nodes = Object.fromEntries(needed.map((major) => [major, nodeFor(major)]));
} catch (error) {
  log(error instanceof SyntaxError ? `bench: BENCH_OPTIONS is not JSON: ${error.message}` : error.message);
  process.exit(1);
}
if (files.length === 0) {
  log(`bench: no bench/*.bench.mjs starts with ${only.join(' or ')}`);
  process.exit(1);
}
const primary = lines[0];
for (const node of Object.values(nodes)) log(`bench: Node ${node.major} is ${node.version} (${node.bin})`);

/** Runs one section under one line's Node; resolves {markdown, figures, seconds} or {error}. */
function runSection(file, node) {
  return new Promise((resolve) => {
    const child = fork(runner, [file], { execPath: node.bin, execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer = null;
    child.on('message', (message) => (answer = message));
    child.on('error', (error) => (answer ??= { error: error.message }));
    child.on('exit', (code, signal) => {
      if (answer?.result !== undefined) resolve(answer.result);
      else resolve({ error: answer?.error ?? `the section's process exited (${signal ?? code}) without a result` });
    });
  });
}

const byLine = Object.fromEntries(lines.map((major) => [major, []])); // [{file, markdown}] per line
const once = [];
const figures = Object.fromEntries(lines.map((major) => [major, {}]));
const timings = [];
const failures = [];
const started = Date.now();
const loadAtStart = os.loadavg();
for (const file of files) {
  const name = sectionName(file);
  const onLines = PER_LINE.has(name) ? lines : [primary];
  for (const major of onLines) {
    const node = nodes[major];
    log(`bench: ${file} on Node ${node.version}`);
    const result = await runSection(file, node);
    let markdown;
    if (result.error !== undefined) {
      log(`bench: ${file} failed on Node ${node.version}:\n${result.error}`);
      failures.push(`${name} on Node ${major}`);
      markdown = `### ${name}\n\n**Failed** on Node ${node.version}:\n\n\`\`\`\n${result.error}\n\`\`\``;
    } else {
      log(`bench: ${file} on Node ${node.version} took ${result.seconds.toFixed(0)} s`);
      timings.push(`${name}${PER_LINE.has(name) ? ` on ${major}` : ''} ${result.seconds.toFixed(0)} s`);
      if (result.figures !== null) figures[major][name] = result.figures;
      markdown = result.markdown;
    }
    (PER_LINE.has(name) ? byLine[major] : once).push(markdown);
    console.log(`<!-- ${name}, Node ${node.version} -->\n${markdown}\n`);
  }
}

let targets;
try {
  targets = targetsSection(figures, lines);
} catch (error) {
  // The sections' own figures are still written; only the summary is missing.
  failures.push('the targets table');
  targets = `## Targets\n\n**Could not be computed** from this run's figures: ${error.message}`;
}
const cpu = os.cpus();
const perLineRan = files.map(sectionName).filter((n) => PER_LINE.has(n));
const onceRan = files.map(sectionName).filter((n) => !PER_LINE.has(n));
const lineNames = lines.filter((major) => nodes[major] !== undefined).map((major) => `**Node ${major}: ${nodes[major].version}** (${nodes[major].source})`);
const header = [
  '# leakwatch benchmark results',
  '',
  `Written by \`npm run bench\` on ${new Date().toISOString()} in ${((Date.now() - started) / 1000).toFixed(0)} s (${timings.join(', ')}).`,
  '',
  `Node lines: ${lineNames.join(' and ')}.`,
  perLineRan.length > 0 ? `Measured on each line, section by section (${lines.map((m) => `Node ${m}`).join(', then ')}): ${perLineRan.join(', ')}.` : null,
  onceRan.length > 0 ? `Measured once, on Node ${primary} (${nodes[primary].version}): ${onceRan.join(', ')}.` : null,
  "Each line's sections run under that Node alone (the section's process, its servers and its load processes), and within a section the modes compared (bare, leakwatch, OpenTelemetry, …) are measured in the same run, side by side (the HTTP sections: every mode's server loaded at once) or alternating round by round (the others), so a drift of the shared machine falls on every mode alike: compare the figures of one section, not across runs; the lines run one after the other, so across lines compare CPU efficiency rather than µs.",
  '',
  `Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}.`,
  `Load average (1, 5, 15 min) at the start ${loadAtStart.map((l) => l.toFixed(2)).join(', ')}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}.`,
  failures.length > 0 ? `\n**Failed:** ${failures.join(', ')} (see below).` : null,
  '',
]
  .filter((line) => line !== null)
  .join('\n');
const body = [];
for (const major of lines) if (byLine[major].length > 0) body.push(`## Node ${major} (${nodes[major].version})`, ...byLine[major]);
if (once.length > 0) body.push(`## Once, on Node ${primary} (${nodes[primary].version})`, ...once);
const document = header + '\n' + (targets === null ? '' : targets + '\n\n') + body.join('\n\n') + '\n';

const everything = only.length === 0 && lines.join() === DEFAULT_LINES.join() && !process.env.BENCH_OPTIONS;
if (everything) {
  writeFileSync(new URL('results.md', import.meta.url), document);
  log('bench: wrote bench/results.md');
} else {
  console.log(header + '\n' + (targets ?? ''));
  log('bench: a subset (of sections or Node lines) or a short run (BENCH_OPTIONS) was run, so bench/results.md was left as it was');
}
if (failures.length > 0) {
  log(`bench: failed: ${failures.join(', ')}`);
  process.exitCode = 1;
}
