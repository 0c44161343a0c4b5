// The targets of issue 7, checked against the figures of one `npm run bench` run; a section at the
// top of bench/results.md. Figures come from each bench's `run()` result (`figures`).
import { median } from './stats.mjs';

const verdict = (ok) => (ok ? 'met' : '**missed**');

/** Markdown for the targets table, or null when none of the benches it needs ran. */
export function targetsSection(figures) {
  const rows = [];
  const realistic = figures.realistic?.realistic;
  if (realistic !== undefined) {
    const lw = realistic['leakwatch default'];
    const lean = realistic['leakwatch, stacks and attribution off'];
    const otel = realistic.OpenTelemetry;
    rows.push(`| CPU efficiency (bare µs ÷ leakwatch µs) on the realistic endpoint, defaults | ≥ 0.97 | ${lw.efficiency.toFixed(3)} (stacks and attribution off: ${lean.efficiency.toFixed(3)}) | ${verdict(lw.efficiency >= 0.97)} |`);
    rows.push(
      `| leakwatch's added CPU against OpenTelemetry's, realistic endpoint, defaults | ≤ 50% | ${((lw.addedUs / otel.addedUs) * 100).toFixed(0)}% (${lw.addedUs.toFixed(1)} of ${otel.addedUs.toFixed(1)} µs; stacks and attribution off: ${((lean.addedUs / otel.addedUs) * 100).toFixed(0)}%) | ${verdict(lw.addedUs <= otel.addedUs / 2)} |`,
    );
  }
  const memory = figures.memory;
  if (memory !== undefined) {
    rows.push(`| heap after 1,000,000 requests against the warm baseline | within 5 MB | ${memory.growthMb >= 0 ? '+' : ''}${memory.growthMb.toFixed(2)} MB (largest reading ${memory.maxGrowthMb >= 0 ? '+' : ''}${memory.maxGrowthMb.toFixed(2)} MB) | ${verdict(Math.abs(memory.growthMb) <= 5 && memory.maxGrowthMb <= 5)} |`);
  }
  const scale = figures.scale;
  if (scale !== undefined) {
    const at = scale.sweeps[String(scale.open)];
    rows.push(`| one deadline sweep with nothing due at ${scale.open.toLocaleString('en')} open | < 1 ms | ${at.median.toFixed(0)} ns (worst ${at.max.toFixed(0)} ns); ${scale.bytesPerOpen.toFixed(0)} bytes per open response | ${verdict(at.max < 1e6)} |`);
  }
  const detection = figures.detection;
  if (detection !== undefined && detection.observed.length > 0) {
    rows.push(`| detection latency after the threshold (500 ms), ledger/metric | (reported) | ${median(detection.observed).toFixed(1)} ms median, ${detection.observed.at(-1).toFixed(1)} ms max | — |`);
  }
  if (rows.length === 0) return null;
  return ['## Targets', '', '| target | wanted | this run | |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
