// The targets, checked against the figures of one `npm run bench` run; a section at the top of
// bench/results.md. Figures come from each bench's `run()` result (`figures`), per Node line:
// figures[major][section].
import { median } from './stats.mjs';

const MIN_ROUNDS = 7;
const verdict = (ok) => (ok ? 'met' : '**missed**');
const fmt = (x, digits) => x.toFixed(digits);
/** Median (min–max) of a figure kept as {median, min, max}. */
const spread = (s, digits = 0) => `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;

/** CPU efficiency targets: bare µs ÷ leakwatch µs per request, median of rounds measured side by side. */
const EFFICIENCY = [
  { line: 24, endpoint: 'realistic', mode: 'leakwatch default', wanted: 0.97, what: 'realistic endpoint (Express 5 + pg + Redis), defaults' },
  { line: 24, endpoint: 'realistic', mode: 'leakwatch default + metrics', wanted: 0.96, what: 'realistic endpoint, defaults + metrics served' },
  { line: 24, endpoint: 'hello', mode: 'leakwatch default', wanted: 0.95, what: 'hello world (node:http, res.end replaced per request), defaults' },
  { line: 20, endpoint: 'realistic', mode: 'leakwatch default', wanted: 0.88, what: 'realistic endpoint (Express 5 + pg + Redis), defaults' },
];

function efficiencyRow(target, endpoint) {
  const f = endpoint[target.mode];
  const lean = target.mode === 'leakwatch default' ? endpoint['leakwatch, stacks and attribution off'] : undefined;
  const interval = f.efficiencyInterval == null ? '' : `; 95 % interval over ${f.sets} server sets ${fmt(f.efficiencyInterval[0], 3)}–${fmt(f.efficiencyInterval[1], 3)}`;
  const figure = `${fmt(f.efficiency, 3)} (${fmt(f.efficiencyMin, 3)}–${fmt(f.efficiencyMax, 3)}), ${f.rounds} rounds${interval}${lean === undefined ? '' : `; stacks and attribution off: ${fmt(lean.efficiency, 3)}`}`;
  let judged = f.rounds >= MIN_ROUNDS ? verdict(f.efficiency >= target.wanted) : `not judged (needs ≥ ${MIN_ROUNDS} rounds)`;
  // Said beside the verdict when the interval holds the wanted figure: this run cannot tell which side it is on.
  if (f.rounds >= MIN_ROUNDS && f.efficiencyInterval != null && f.efficiencyInterval[0] < target.wanted && target.wanted <= f.efficiencyInterval[1]) judged += ' (within the interval)';
  return `| Node ${target.line}: CPU efficiency (bare µs ÷ leakwatch µs per request), ${target.what} | ≥ ${target.wanted.toFixed(2)} | ${figure} | ${judged} |`;
}

/** Markdown for the targets table, or null when none of the benches it needs ran; `lines` in the run's order. */
export function targetsSection(figuresByLine, lines = Object.keys(figuresByLine).map(Number)) {
  const rows = [];
  for (const target of EFFICIENCY) {
    const endpoint = figuresByLine[target.line]?.realistic?.[target.endpoint];
    if (endpoint !== undefined) rows.push(efficiencyRow(target, endpoint));
  }
  for (const line of lines) {
    const realistic = figuresByLine[line]?.realistic?.realistic;
    if (realistic === undefined) continue;
    const lw = realistic['leakwatch default'];
    const lean = realistic['leakwatch, stacks and attribution off'];
    const otel = realistic.OpenTelemetry;
    rows.push(
      `| Node ${line}: leakwatch's added CPU against OpenTelemetry's, realistic endpoint, defaults | ≤ 50% | ${((lw.addedUs / otel.addedUs) * 100).toFixed(0)}% (${lw.addedUs.toFixed(1)} of ${otel.addedUs.toFixed(1)} µs; stacks and attribution off: ${((lean.addedUs / otel.addedUs) * 100).toFixed(0)}%) | ${verdict(lw.addedUs <= otel.addedUs / 2)} |`,
    );
  }
  for (const line of lines) {
    const ledger = figuresByLine[line]?.ledger;
    if (ledger === undefined) continue;
    const judge = (ok) => (ledger.rounds >= MIN_ROUNDS ? verdict(ok) : `not judged (needs ≥ ${MIN_ROUNDS} rounds)`);
    rows.push(`| Node ${line}: ledger, per response (open + close) | < 1 µs | ${spread(ledger.responseNs)} ns | ${judge(ledger.responseNs.median < 1000)} |`);
    rows.push(`| Node ${line}: ledger, per checkout owned by a response (acquire + busy + idle + release) | < 1 µs | ${spread(ledger.ownedCheckoutNs)} ns (not owned: ${fmt(ledger.connectionNs.median, 0)} ns) | ${judge(ledger.ownedCheckoutNs.median < 1000)} |`);
    rows.push(`| Node ${line}: per pg checkout, stacks included (a ${ledger.stackFrames}-frame acquisition stack + the ledger) | < 2 µs | ${spread(ledger.stackCheckoutNs)} ns (the capture alone: ${fmt(ledger.captureNs.median, 0)} ns) | ${judge(ledger.stackCheckoutNs.median < 2000)} |`);
  }
  for (const line of lines) {
    const { memory, scale, detection } = figuresByLine[line] ?? {};
    if (memory !== undefined) {
      rows.push(`| Node ${line}: heap after 1,000,000 requests against the warm baseline | within 5 MB | ${memory.growthMb >= 0 ? '+' : ''}${memory.growthMb.toFixed(2)} MB (largest reading ${memory.maxGrowthMb >= 0 ? '+' : ''}${memory.maxGrowthMb.toFixed(2)} MB) | ${verdict(Math.abs(memory.growthMb) <= 5 && memory.maxGrowthMb <= 5)} |`);
    }
    for (const { label, barePromoted, leakwatchPromoted } of memory?.promotion?.configs ?? []) {
      rows.push(`| Node ${line}: bytes promoted to the old generation per request, realistic endpoint, defaults, young generation: ${label} | within 64 B of bare | ${leakwatchPromoted.toFixed(1)} B (bare: ${barePromoted.toFixed(1)} B) | ${verdict(leakwatchPromoted - barePromoted <= 64)} |`);
    }
    if (scale !== undefined) {
      const at = scale.sweeps[String(scale.open)];
      rows.push(`| Node ${line}: one deadline sweep with nothing due at ${scale.open.toLocaleString('en')} open | < 1 ms | ${at.median.toFixed(0)} ns (worst ${at.max.toFixed(0)} ns); ${scale.bytesPerOpen.toFixed(0)} bytes per open response | ${verdict(at.max < 1e6)} |`);
    }
    if (detection !== undefined && detection.observed.length > 0) {
      rows.push(`| Node ${line}: detection latency after the threshold (500 ms), ledger/metric | (reported) | ${median(detection.observed).toFixed(1)} ms median, ${detection.observed.at(-1).toFixed(1)} ms max | — |`);
    }
  }
  if (rows.length === 0) return null;
  return [
    '## Targets',
    '',
    `CPU efficiency is the median over rounds of bare µs ÷ leakwatch µs per request in the same round (min–max over rounds in brackets); a target is judged on the median, and only with ≥ ${MIN_ROUNDS} rounds (ledger rows too). The 95 % interval is the median's over the server sets (bootstrap, whole sets resampled: the rounds of a set share its server processes, and two servers of the same code differ by several per cent); where it holds the wanted figure, the verdict says so: that run cannot tell whether the target is met. Ledger figures are ns per operation, median (min–max) of the ledger section's rounds.`,
    '',
    '| target | wanted | this run | |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
