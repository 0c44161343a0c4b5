import type { AnyRegistry, PromClient } from './prom-client.js';

/**
 * The text a scraper gets: OpenMetrics 1.0 when its Accept header prefers it (Prometheus asks for
 * it first), else the Prometheus text format 0.0.4. Exemplars appear only in OpenMetrics, and only
 * on counter samples, where that format allows them.
 */

export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_TEXT = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export type ExpositionFormat = 'prometheus' | 'openmetrics';

/** One metric family as `registry.getMetricsAsJSON()` gives it, counters named by their samples (`…_total`). */
export interface MetricFamily {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string; exemplar?: unknown }>;
}

/** Picks the format from an Accept header by its q-values; OpenMetrics wins a tie. */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (accept === undefined || accept === '') return 'prometheus';
  let openMetrics = 0;
  let text = 0;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.trim().toLowerCase().split(';');
    let q = 1;
    let version: string | undefined;
    for (const param of params) {
      const [key, value] = param.trim().split('=');
      if (key === 'q') q = Number(value);
      else if (key === 'version') version = value;
    }
    if (!(q > 0)) continue;
    const mediaType = type.trim();
    // Only OpenMetrics 1.0.0 is written; a scraper that names another version gets text.
    if (mediaType === 'application/openmetrics-text' && (version === undefined || version === '1.0.0')) openMetrics = Math.max(openMetrics, q);
    else if (mediaType === 'text/plain' || mediaType === '*/*' || mediaType === 'text/*') text = Math.max(text, q);
  }
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'prometheus';
}

export function contentTypeOf(format: ExpositionFormat): string {
  return format === 'openmetrics' ? OPENMETRICS_TEXT : PROMETHEUS_TEXT;
}

/**
 * The families of a registry, read now (every collect() runs). An OpenMetrics registry renames its
 * counter objects without `_total` once scraped; here counters are always named by their samples.
 */
export async function snapshot(registry: AnyRegistry): Promise<MetricFamily[]> {
  const families = (await registry.getMetricsAsJSON()) as unknown as MetricFamily[];
  const stripped = registry.contentType === OPENMETRICS_TEXT;
  return families.map((family) =>
    family.type === 'counter' && stripped && !family.name.endsWith('_total') ? { ...family, name: `${family.name}_total` } : family,
  );
}

/**
 * Writes families in either format. It goes through a throwaway prom-client Registry so the text is
 * prom-client's own; each family is a fresh object, because an OpenMetrics Registry renames the
 * counters it writes.
 */
export function render(prom: PromClient, families: MetricFamily[], format: ExpositionFormat): Promise<string> {
  const view = new prom.Registry() as AnyRegistry;
  view.setContentType(format === 'openmetrics' ? prom.Registry.OPENMETRICS_CONTENT_TYPE : prom.Registry.PROMETHEUS_CONTENT_TYPE);
  for (const family of families) {
    // OpenMetrics names a counter family without `_total` and prom-client adds it to each sample.
    const name = format === 'openmetrics' && family.type === 'counter' ? family.name.replace(/_total$/, '') : family.name;
    const item = { name, help: family.help, type: family.type, aggregator: family.aggregator, get: async () => ({ ...family, name }) };
    view.registerMetric(item as never);
  }
  return view.metrics();
}
