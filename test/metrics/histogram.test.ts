import * as prom from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountOfHistogram, TallyHistogram } from '../../src/metrics/histogram.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const OBSERVATIONS: Array<[Record<string, string>, number]> = [
  [{ method: 'GET', route: '/a', outcome: 'finished' }, 0.003],
  [{ method: 'GET', route: '/a', outcome: 'finished' }, 0.005], // on a bound: counted in it (le)
  [{ method: 'GET', route: '/a', outcome: 'finished' }, 0.0051],
  [{ method: 'POST', route: '/b/:id', outcome: 'aborted' }, 0.7],
  [{ method: 'GET', route: '/a', outcome: 'finished' }, 3], // above every bound: +Inf only
  [{ method: 'POST', route: '/b/:id', outcome: 'aborted' }, 0],
];

function registryOf(contentType: string): prom.Registry {
  const registry = new prom.Registry();
  registry.setContentType(contentType as never);
  return registry;
}

describe('TallyHistogram and CountOfHistogram', () => {
  for (const contentType of [prom.Registry.PROMETHEUS_CONTENT_TYPE, prom.Registry.OPENMETRICS_CONTENT_TYPE]) {
    it(`write what prom-client's Histogram and Counter write for the same observations (${contentType.split(';')[0]})`, async () => {
      const theirs = registryOf(contentType);
      const theirCounter = new prom.Counter({ name: 'x_responses_total', help: 'h', labelNames: ['method', 'route', 'outcome'], registers: [theirs] });
      const theirHistogram = new prom.Histogram({ name: 'x_duration_seconds', help: 'd', labelNames: ['method', 'route', 'outcome'], buckets: BUCKETS, registers: [theirs] });
      const ours = registryOf(contentType);
      const histogram = new TallyHistogram({ name: 'x_duration_seconds', help: 'd', labelNames: ['method', 'route', 'outcome'], buckets: BUCKETS, registers: [] });
      new CountOfHistogram({ name: 'x_responses_total', help: 'h', registers: [ours] }, histogram);
      ours.registerMetric(histogram as never);

      for (const [labels, value] of OBSERVATIONS) {
        theirCounter.inc(labels);
        theirHistogram.observe(labels, value);
        histogram.seriesOf(labels).observe(value);
      }
      expect(await ours.metrics()).toBe(await theirs.metrics());
      // prom-client's samples also carry an empty `exemplar` (null or undefined): the same otherwise.
      const withoutEmptyExemplars = (families: prom.MetricObjectWithValues<prom.MetricValue<string>>[]) =>
        families.map((family) => ({ ...family, values: family.values.map(({ exemplar, ...sample }: { exemplar?: unknown }) => (exemplar == null ? sample : { exemplar, ...sample })) }));
      expect(withoutEmptyExemplars(await ours.getMetricsAsJSON())).toEqual(withoutEmptyExemplars(await theirs.getMetricsAsJSON()));
    });
  }

  it('aggregates across cluster workers as prom-client does', async () => {
    const worker = async (make: (registry: prom.Registry) => (labels: Record<string, string>, v: number) => void) => {
      const registry = new prom.Registry();
      const observe = make(registry);
      for (const [labels, value] of OBSERVATIONS) observe(labels, value);
      return registry.getMetricsAsJSON();
    };
    const tally = (registry: prom.Registry) => {
      const h = new TallyHistogram({ name: 'y_seconds', help: 'y', labelNames: ['method', 'route', 'outcome'], buckets: BUCKETS, registers: [registry] });
      return (labels: Record<string, string>, v: number) => h.seriesOf(labels).observe(v);
    };
    const theirs = (registry: prom.Registry) => {
      const h = new prom.Histogram({ name: 'y_seconds', help: 'y', labelNames: ['method', 'route', 'outcome'], buckets: BUCKETS, registers: [registry], aggregator: 'sum' });
      return (labels: Record<string, string>, v: number) => h.observe(labels, v);
    };
    const ours = prom.AggregatorRegistry.aggregate([await worker(tally), await worker(tally)] as never);
    const expected = prom.AggregatorRegistry.aggregate([await worker(theirs), await worker(theirs)] as never);
    expect(await ours.metrics()).toBe(await expected.metrics());
  });

  it('never throws on a value that is not a finite number, and leaves it out', async () => {
    const registry = new prom.Registry();
    const histogram = new TallyHistogram({ name: 'z_seconds', help: 'z', labelNames: ['pool'], buckets: [1], registers: [registry] });
    const series = histogram.seriesOf({ pool: 'main' });
    for (const value of [NaN, Infinity, -Infinity]) expect(() => series.observe(value)).not.toThrow();
    series.observe(0.5);
    expect(await registry.metrics()).toContain('z_seconds_count{pool="main"} 1');
    expect(await registry.metrics()).toContain('z_seconds_sum{pool="main"} 0.5');
  });

  it('keeps a reset series, empty, so that a caller holding it goes on counting', async () => {
    const registry = new prom.Registry();
    const histogram = new TallyHistogram({ name: 'r_seconds', help: 'r', labelNames: ['pool'], buckets: [1], registers: [registry] });
    const series = histogram.seriesOf({ pool: 'main' });
    series.observe(2);
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('r_seconds_count{pool="main"} 0');
    series.observe(0.5);
    const text = await registry.metrics();
    expect(text).toContain('r_seconds_bucket{le="1",pool="main"} 1');
    expect(text).toContain('r_seconds_count{pool="main"} 1');
  });

  it('refuses bucket bounds that are not finite numbers', () => {
    expect(() => new TallyHistogram({ name: 'b', help: 'b', labelNames: [], buckets: [1, Infinity], registers: [] })).toThrow(/bucket bounds must be finite/);
  });
});
