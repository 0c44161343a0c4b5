import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../src/index.js';
import { SERIES_NAMES } from '../support/internals.js';
import { DASHBOARD_FILE, metricNamesIn, readDashboard, readRules, variableQuery, visualPanels, type Dashboard } from './support/dashboard.js';

/**
 * The dashboard against Grafana's own dashboard schema: the JSON Schema of the `Dashboard` type of
 * @grafana/schema (the pinned version in package.json), and each panel's options and field config
 * against its plugin's `Options` / `FieldConfig` types from the same package.
 */

const schemaPackage = path.dirname(require.resolve('@grafana/schema/package.json'));
const typesDir = path.join(schemaPackage, 'dist/types/raw');

/** One TypeScript program over the types to check against; a JSON Schema per type from it. */
function schemaGenerator(types: Record<string, { file: string; type: string }>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakwatch-grafana-schema-'));
  const entry = path.join(dir, 'types.ts');
  const lines = Object.entries(types).flatMap(([alias, { file, type }]) => [
    `import type { ${type} as ${alias}Source } from ${JSON.stringify(file.replace(/\.d\.ts$/, ''))};`,
    `export type Checked_${alias} = ${alias}Source;`,
  ]);
  fs.writeFileSync(entry, lines.join('\n') + '\n');
  try {
    const generator = createGenerator({ path: entry, skipTypeCheck: true, expose: 'all', topRef: true, additionalProperties: false });
    const ajv = new Ajv({ allErrors: true, strict: false });
    const compiled = new Map(Object.keys(types).map((alias) => [alias, ajv.compile(generator.createSchema(`Checked_${alias}`))]));
    return (alias: string): ValidateFunction => compiled.get(alias)!;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

const PANEL_TYPES = ['stat', 'timeseries', 'table'] as const;

let dashboard: Dashboard;
let validateDashboard: ValidateFunction;
const validateOptions = new Map<string, ValidateFunction>();
const validateFieldConfig = new Map<string, ValidateFunction>();

beforeAll(() => {
  dashboard = readDashboard();
  const types: Record<string, { file: string; type: string }> = { Dashboard: { file: path.join(typesDir, 'dashboard/x/types.gen.d.ts'), type: 'Dashboard' } };
  const withFieldConfig: string[] = [];
  for (const panel of PANEL_TYPES) {
    const file = path.join(typesDir, `composable/${panel}/panelcfg/x/types.gen.d.ts`);
    types[`${panel}Options`] = { file, type: 'Options' };
    if (fs.readFileSync(file, 'utf8').includes('export interface FieldConfig')) {
      types[`${panel}FieldConfig`] = { file, type: 'FieldConfig' };
      withFieldConfig.push(panel);
    }
  }
  const compile = schemaGenerator(types);
  validateDashboard = compile('Dashboard');
  for (const panel of PANEL_TYPES) validateOptions.set(panel, compile(`${panel}Options`));
  for (const panel of withFieldConfig) validateFieldConfig.set(panel, compile(`${panel}FieldConfig`));
}, 60_000);

describe('dashboards/leakwatch.json', () => {
  it('is a dashboard by the schema of @grafana/schema, with no property the schema does not know', () => {
    const valid = validateDashboard(dashboard);
    expect(errorsOf(validateDashboard)).toBe('');
    expect(valid).toBe(true);
  });

  it('fails that schema for a misspelt property (the check can fail)', () => {
    const broken = structuredClone(dashboard) as Dashboard & { panels: Array<Record<string, unknown>> };
    broken.panels[1].tittle = 'typo';
    expect(validateDashboard(broken)).toBe(false);
  });

  it("gives each panel options and field config that its plugin's schema accepts", () => {
    const problems: string[] = [];
    for (const panel of visualPanels(dashboard)) {
      const options = validateOptions.get(panel.type);
      if (options === undefined) {
        problems.push(`panel ${panel.id} "${panel.title}" is of type ${panel.type}, which this test has no schema for`);
        continue;
      }
      if (!options(panel.options)) problems.push(`panel ${panel.id} "${panel.title}" options:\n${errorsOf(options)}`);
      const custom = panel.fieldConfig?.defaults.custom;
      const fieldConfig = validateFieldConfig.get(panel.type);
      if (custom !== undefined && fieldConfig !== undefined && !fieldConfig(custom)) {
        problems.push(`panel ${panel.id} "${panel.title}" fieldConfig.defaults.custom:\n${errorsOf(fieldConfig)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("fails a panel's schema for a missing or unknown option (the check can fail)", () => {
    const stat = visualPanels(dashboard).find((p) => p.type === 'stat');
    const { wideLayout: _, ...withoutRequired } = stat?.options as Record<string, unknown>;
    expect(validateOptions.get('stat')?.(withoutRequired)).toBe(false);
    const series = visualPanels(dashboard).find((p) => p.type === 'timeseries');
    const custom = { ...(series?.fieldConfig?.defaults.custom as object), lineWidht: 2 };
    expect(validateFieldConfig.get('timeseries')?.(custom)).toBe(false);
  });

  it('uses a datasource template variable rather than __inputs, so file provisioning loads it', () => {
    expect(dashboard).not.toHaveProperty('__inputs');
    expect(fs.readFileSync(DASHBOARD_FILE, 'utf8')).not.toMatch(/\$\{DS_/);
    const variables = dashboard.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['job', 'instance', 'route']) expect(variables.find((v) => v.name === name)).toMatchObject({ type: 'query', allValue: '.*' });
    for (const panel of visualPanels(dashboard)) {
      expect(panel.datasource, `panel ${panel.title}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('gives every panel a description and a unit', () => {
    for (const panel of visualPanels(dashboard)) {
      expect(panel.description?.length ?? 0, `description of "${panel.title}"`).toBeGreaterThan(40);
      expect(panel.fieldConfig?.defaults.unit, `unit of "${panel.title}"`).toMatch(/^[a-z]+$/);
    }
  });

  it('has the panels issue 5 asks for', () => {
    const byType = (type: string) => visualPanels(dashboard).filter((p) => p.type === type).map((p) => p.title);
    expect(byType('stat')).toEqual([
      'Open responses',
      'Leaked responses in range',
      'Oldest open response',
      'Connections stranded by leaks',
      'Pool utilisation (busiest pool)',
    ]);
    expect(byType('timeseries')).toEqual(
      expect.arrayContaining([
        'Open responses by route',
        'Leak rate by reason',
        'Response outcomes',
        'Response duration quantiles',
        'Pool connections by state against max',
        'Connections stranded by leaks',
        'Checkouts waiting',
        'Connection use time p99',
      ]),
    );
    expect(byType('table')).toEqual(['Top leaking routes']);
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toContain('Server side (postgres_exporter, redis_exporter)');
    const exprs = visualPanels(dashboard).flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.some((e) => e.includes('pg_stat_activity_count'))).toBe(true);
    expect(exprs.some((e) => e.includes('redis_connected_clients'))).toBe(true);
  });

  it('has the pool pressure row issue 16 asks for: utilisation against max, waiters, wait p99, exhaustion', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row');
    const pressure = rows.find((r) => r.title === 'Pool pressure');
    expect(pressure).toBeDefined();
    // The panels between this row and the next are its own.
    const next = rows.find((r) => r.gridPos.y > pressure!.gridPos.y);
    const inRow = visualPanels(dashboard).filter((p) => p.gridPos.y > pressure!.gridPos.y && (next === undefined || p.gridPos.y < next.gridPos.y));
    expect(inRow.map((p) => p.title)).toEqual(['Pool utilisation against max', 'Checkouts waiting', 'Checkout wait time', 'Pool exhaustion']);
    const exprs = (title: string) => inRow.find((p) => p.title === title)!.targets!.map((t) => t.expr);
    expect(exprs('Pool utilisation against max')[0]).toMatch(/leakwatch_db_client_connections\{[^}]*state="used"\}\) \/ .*leakwatch_db_client_connections_max/);
    expect(exprs('Checkouts waiting').join('\n')).toMatch(/leakwatch_db_client_connection_pending_requests[\s\S]*rate\(leakwatch_db_client_connection_waits_total/);
    expect(exprs('Checkout wait time')[0]).toMatch(/^histogram_quantile\(0\.99, sum by \(db_system, pool, le\) \(rate\(leakwatch_db_client_connection_wait_duration_seconds_bucket/);
    expect(exprs('Pool exhaustion').join('\n')).toMatch(/leakwatch_db_client_pool_exhausted[\s\S]*leakwatch_db_client_pool_exhaustions_total/);
    expect(inRow.find((p) => p.title === 'Pool utilisation against max')!.fieldConfig!.defaults.unit).toBe('percentunit');
  });

  it('lays out no two panels over each other', () => {
    const boxes = dashboard.panels.map((p) => ({ title: p.title, ...p.gridPos }));
    const overlaps: string[] = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i];
        const b = boxes[j];
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) overlaps.push(`${a.title} / ${b.title}`);
      }
    }
    expect(overlaps).toEqual([]);
  });
});

describe('metric names in the dashboard and the rules', () => {
  const exported = new Set(SERIES_NAMES);

  it('are all names leakwatch exports', () => {
    const dashboard = readDashboard();
    const used = [
      ...visualPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
      ...dashboard.templating.list.map((v) => ({ where: `variable ${v.name}`, expr: variableQuery(v) })),
      ...readRules().map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })),
    ];
    const unknown = used.flatMap(({ where, expr }) => metricNamesIn(expr, 'leakwatch_').filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
    expect(unknown).toEqual([]);
  });

  it('cover every family leakwatch exports', () => {
    const dashboard = readDashboard();
    const all = [
      ...visualPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.map(variableQuery),
      ...readRules().map((r) => r.expr),
    ].flatMap((expr) => metricNamesIn(expr, 'leakwatch_'));
    const families = new Set(all.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(METRIC_NAMES.filter((name) => !families.has(name))).toEqual([]);
  });

  it('would catch a misspelt name (the check can fail)', () => {
    expect(metricNamesIn('sum(leakwatch_http_server_open_response{job="x"})', 'leakwatch_').filter((n) => !exported.has(n))).toEqual([
      'leakwatch_http_server_open_response',
    ]);
    expect(metricNamesIn('label_values({__name__=~"leakwatch_a_(b|c)"}, route)', 'leakwatch_')).toEqual(['leakwatch_a_b', 'leakwatch_a_c']);
  });
});
