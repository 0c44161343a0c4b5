// `npm run bench`: runs every bench/*.bench.mjs and writes bench/results.md.
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { targetsSection } from './lib/targets.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
const log = (line) => process.stderr.write(line + '\n');
const sections = [];
const timings = [];
const figures = {};
const started = Date.now();
const loadAtStart = os.loadavg();
for (const file of files) {
  log(`bench: ${file}`);
  const sectionStarted = Date.now();
  const module = await import(new URL(file, import.meta.url));
  const result = await module.run({ log });
  const seconds = (Date.now() - sectionStarted) / 1000;
  timings.push(`${file.replace('.bench.mjs', '')} ${seconds.toFixed(0)} s`);
  log(`bench: ${file} took ${seconds.toFixed(0)} s`);
  if (typeof result === 'object' && result.figures !== undefined) figures[file.replace('.bench.mjs', '')] = result.figures;
  sections.push(typeof result === 'string' ? result : result.markdown);
  console.log(sections.at(-1) + '\n');
}
const header = [
  '# leakwatch benchmark results',
  '',
  `Written by \`npm run bench\` on ${new Date().toISOString()} in ${((Date.now() - started) / 1000).toFixed(0)} s (${timings.join(', ')}).`,
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}.`,
  `Load average (1, 5, 15 min) at the start ${loadAtStart.map((l) => l.toFixed(2)).join(', ')}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}.`,
  'A shared machine: compare figures within one run (bare and instrumented alternate), not across runs.',
  '',
].join('\n');
const targets = targetsSection(figures);
if (targets !== null) console.log(targets + '\n');
if (only.length === 0) writeFileSync(new URL('results.md', import.meta.url), header + '\n' + (targets === null ? '' : targets + '\n\n') + sections.join('\n\n') + '\n');
else log('bench: a subset was run, so bench/results.md was left as it was');
