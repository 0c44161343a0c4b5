import type { Dashboard } from './dashboard.js';

/** What Grafana would substitute into a query of the dashboard. */
export interface DashboardScope {
  job: string;
  instance: string;
  /** One route, or null for All. */
  route: string | null;
  rateInterval: string;
  range: string;
  interval: string;
}

/** Grafana's escaping of a multi-value or include-all variable's value inside a regex matcher. */
function regexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/**
 * Substitutes what Grafana substitutes in a Prometheus query: `$__rate_interval`, `$__range`,
 * `$__interval`, and the template variables, escaped as the Prometheus data source escapes them
 * (a multi-value variable's single value regex-escaped; All as its allValue).
 */
export function interpolate(expr: string, dashboard: Dashboard, scope: DashboardScope): string {
  const values: Record<string, string | null> = { job: scope.job, instance: scope.instance, route: scope.route };
  let out = expr
    .replaceAll('$__rate_interval', scope.rateInterval)
    .replaceAll('$__range', scope.range)
    .replaceAll('$__interval', scope.interval);
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const value = values[variable.name];
    if (value === undefined) throw new Error(`the test has no value for variable ${variable.name}`);
    const text = value === null ? (variable.allValue ?? '.*') : regexEscape(value);
    out = out.replace(new RegExp(`\\$\\{${variable.name}\\}|\\$${variable.name}\\b`, 'g'), () => text);
  }
  return out;
}
