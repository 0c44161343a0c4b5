import type { Gauge } from 'prom-client';
import type { Ledger, LedgerObserver } from '../core/ledger.js';
import type { ResponseRecord } from '../core/records.js';
import type { MetricSet } from './definitions.js';
import type { HistogramSeries } from './histogram.js';
import { LabelCap, methodLabel, routeLabel } from './labels.js';

/**
 * Responses of leakwatch's own metrics handler mounted on the app's server: scrapes, not the app's
 * traffic. There are usually none, so until one is added a response's check is a flag, not a
 * lookup.
 */
export class IgnoredResponses {
  private readonly responses = new WeakSet<ResponseRecord>();
  private any = false;

  add(response: ResponseRecord): void {
    this.any = true;
    this.responses.add(response);
  }

  has(response: ResponseRecord): boolean {
    return this.any && this.responses.has(response);
  }
}

/**
 * The HTTP server families: counters and the duration histogram fed as responses close or leak,
 * and the open-response gauges read from the ledger when scraped.
 */
export class ResponseMetrics implements LedgerObserver {
  private readonly closedRoutes: LabelCap;
  private readonly leakedRoutes: LabelCap;
  private readonly openRoutes: LabelCap;
  /** Label pairs of the open-responses gauge seen so far: written as 0 when nothing is open for them. */
  private readonly openSeen = new Map<string, { method: string; route: string }>();
  /** Duration series by route label, then by method (finished) or `method aborted`: found, not hashed, as each response closes. */
  private readonly closedSeries = new Map<string, Map<string, HistogramSeries>>();

  constructor(
    private readonly metrics: MetricSet,
    private readonly ledger: () => Ledger | undefined,
    maxRoutes: number,
    private readonly exemplars: boolean,
    /** Responses of leakwatch's own metrics server, which are not the app's. */
    private readonly ignored: IgnoredResponses,
  ) {
    // The duration histogram shares the counter's cap: both are written at close, for the same routes.
    this.closedRoutes = new LabelCap(maxRoutes);
    this.leakedRoutes = new LabelCap(maxRoutes);
    this.openRoutes = new LabelCap(maxRoutes);
  }

  /**
   * Every response: one observation of its duration, which the responses counter reads as its count
   * (definitions.ts). The series is looked up by its route and method, made once per label set.
   */
  responseClosed(response: ResponseRecord): void {
    const outcome = response.outcome;
    if (outcome === null || this.ignored.has(response)) return;
    const route = routeLabel(this.closedRoutes, response.route);
    const method = methodLabel(response.method);
    let byMethod = this.closedSeries.get(route);
    if (byMethod === undefined) this.closedSeries.set(route, (byMethod = new Map()));
    const key = outcome === 'finished' ? method : `${method} ${outcome}`;
    let series = byMethod.get(key);
    if (series === undefined) byMethod.set(key, (series = this.metrics.responseDuration.seriesOf({ method, route, outcome })));
    series.observe(Math.max(0, response.closedAt - response.startedAt) / 1000);
  }

  responseLeaked(response: ResponseRecord): void {
    if (response.leak === null || this.ignored.has(response)) return;
    const labels = {
      method: methodLabel(response.method),
      route: routeLabel(this.leakedRoutes, response.route),
      reason: response.leak.reason,
    };
    // The exemplar names the leak as the report does, so a spike leads to the report entry.
    if (this.exemplars) this.metrics.leakedResponses.inc({ labels, value: 1, exemplarLabels: { response_id: response.id } as never });
    else this.metrics.leakedResponses.inc(labels);
  }

  /** collect() of the open-responses gauge. */
  readonly readOpenResponses = (gauge: Gauge<'method' | 'route'>): void => {
    gauge.reset();
    for (const labels of this.openSeen.values()) gauge.set(labels, 0);
    const ledger = this.ledger();
    if (ledger === undefined) return;
    for (const response of ledger.eachOpenResponse()) {
      if (this.ignored.has(response)) continue;
      const method = methodLabel(response.method);
      const route = routeLabel(this.openRoutes, response.route);
      const key = `${method} ${route}`;
      let labels = this.openSeen.get(key);
      if (labels === undefined) this.openSeen.set(key, (labels = { method, route }));
      gauge.inc(labels, 1);
    }
  };

  /** collect() of the oldest-open-response gauge: no sample at all when nothing is open. */
  readonly readOldestOpenResponseStart = (gauge: Gauge): void => {
    // No sample at all when nothing is open: reset() would write a 0, which reads as "open since
    // 1970" and, in a cluster, wins the min.
    const ledger = this.ledger();
    if (ledger === undefined) return void gauge.remove();
    let oldest = Infinity;
    for (const response of ledger.eachOpenResponse()) {
      if (response.startedAt < oldest && !this.ignored.has(response)) oldest = response.startedAt;
    }
    if (oldest === Infinity) gauge.remove();
    else gauge.set((oldest + ledger.wallOffset()) / 1000); // a date, so on the wall clock (core/clock.ts)
  };
}
