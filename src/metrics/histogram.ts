import type { AnyRegistry } from './prom-client.js';

/**
 * Histograms observed on the hot path (a response's duration as it closes, a checkout's wait and
 * use time), and the responses counter read from one of them.
 *
 * prom-client's `Histogram#observe(labels, value)` validates and hashes the label set and finds the
 * bucket through an object keyed by the bound's string form: about 1.5 µs a call on Node 24, for
 * a response or a checkout that costs leakwatch less than that in all. Here a caller keeps the
 * series of its label set (seriesOf), and an observation is a bucket search over a few numbers and
 * three additions. The families are registered in the registry as prom-client's custom metrics
 * are (`name`, `help`, `type`, `aggregator`, `get()`), and `get()` gives the samples prom-client's
 * own histogram and counter give, in the same order, so the exposition, the cluster aggregation
 * and `registry.getMetricsAsJSON()` read them alike.
 */

type Labels = Readonly<Record<string, string>>;

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface Family {
  name: string;
  help: string;
  type: 'histogram' | 'counter';
  values: Sample[];
  aggregator: 'sum';
}

/** The observations of one label set. Bucket counts are per bucket here, cumulative when read. */
export class HistogramSeries {
  /** One count per bound, and a last one above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return; // never throws on the hot path; prom-client would
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

export interface TallyHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  buckets: readonly number[];
  registers: AnyRegistry[];
  /** Called before the samples are read, with the histogram (prom-client calls its `collect` so). */
  collect?: (histogram: TallyHistogram) => void;
}

export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Writable: prom-client's registry may rename a family it formats. */
  name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly bounds: Float64Array;
  private readonly series = new Map<string, HistogramSeries>();
  private readonly collect: ((histogram: TallyHistogram) => void) | undefined;

  constructor(options: TallyHistogramOptions) {
    const bounds = [...options.buckets].sort((a, b) => a - b);
    if (bounds.some((b) => !Number.isFinite(b))) throw new TypeError(`${options.name}: bucket bounds must be finite numbers`);
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.bounds = Float64Array.from(bounds);
    this.collect = options.collect;
    registerIn(options.registers, this);
  }

  /** The series of `labels` (every label name given), made on first use; keep it to observe into. */
  seriesOf(labels: Labels): HistogramSeries {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name] ?? ''}\u0000`;
    let series = this.series.get(key);
    if (series === undefined) {
      const own: Record<string, string> = {};
      for (const name of this.labelNames) own[name] = labels[name] ?? '';
      series = new HistogramSeries(own, this.bounds);
      this.series.set(key, series);
    }
    return series;
  }

  /** Makes the series of `labels` exist with no observation (its buckets read 0). */
  zero(labels: Labels): void {
    this.seriesOf(labels);
  }

  /** Every series, in the order first made. */
  eachSeries(): IterableIterator<HistogramSeries> {
    return this.series.values();
  }

  /**
   * Every series back to no observation. The series stay (callers keep them to observe into), as
   * empty buckets: unlike prom-client's reset(), which drops them.
   */
  reset(): void {
    for (const series of this.series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  get(): Promise<Family> {
    this.collect?.(this);
    const values: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i];
        values.push({ value: cumulative, labels: { le: this.bounds[i], ...series.labels }, metricName: bucketName });
      }
      values.push({ value: series.count, labels: { le: '+Inf', ...series.labels }, metricName: bucketName });
      values.push({ value: series.sum, labels: { ...series.labels }, metricName: `${this.name}_sum` });
      values.push({ value: series.count, labels: { ...series.labels }, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

/**
 * A counter whose samples are the observation counts of a histogram with the same labels (every
 * response closed is one observation of its duration): nothing to do when a response closes.
 */
export class CountOfHistogram {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  name: string;
  readonly help: string;

  constructor(
    options: { name: string; help: string; registers: AnyRegistry[] },
    private readonly histogram: TallyHistogram,
  ) {
    this.name = options.name;
    this.help = options.help;
    registerIn(options.registers, this);
  }

  reset(): void {
    this.histogram.reset();
  }

  get(): Promise<Family> {
    const values: Sample[] = [];
    for (const series of this.histogram.eachSeries()) values.push({ value: series.count, labels: { ...series.labels } });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

/** Registers a family of leakwatch's own (not a prom-client class) in each registry; returns it. */
export function registerIn<M>(registers: readonly AnyRegistry[], metric: M): M {
  for (const registry of registers) registry.registerMetric(metric as never);
  return metric;
}
