import fs from 'node:fs';
import path from 'node:path';

/** The shipped Grafana dashboard and Prometheus rules, and the PromQL they contain. */

export const ROOT = path.resolve(__dirname, '../../..');
export const DASHBOARD_FILE = path.join(ROOT, 'dashboards/leakwatch.json');
export const RULES_FILE = path.join(ROOT, 'dashboards/leakwatch.rules.yml');
export const RULES_TEST_FILE = path.join(ROOT, 'dashboards/leakwatch.rules.test.yml');

export interface DashboardTarget {
  refId: string;
  expr: string;
  instant?: boolean;
  format?: string;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  fieldConfig?: { defaults: { unit?: string; custom?: unknown }; overrides: unknown[] };
  options?: unknown;
  targets?: DashboardTarget[];
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  panels?: DashboardPanel[];
}

export interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  definition?: string;
  allValue?: string;
}

export interface Dashboard {
  panels: DashboardPanel[];
  templating: { list: DashboardVariable[] };
  [key: string]: unknown;
}

export function readDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included, rows themselves excluded. */
export function visualPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]));
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * The rules of the rules file. A small reader for the subset of YAML the file uses (groups, rules
 * with block-scalar `expr`, flat label and annotation maps), so the tests need no YAML package.
 */
export function readRules(): Rule[] {
  const lines = fs.readFileSync(RULES_FILE, 'utf8').split('\n');
  const rules: Rule[] = [];
  let rule: Rule | null = null;
  let map: Record<string, string> | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    const start = /^\s+- (alert|record): (.+)$/.exec(line);
    if (start) {
      rule = { expr: '', [start[1]]: unquote(start[2]) } as Rule;
      rules.push(rule);
      map = null;
      continue;
    }
    if (rule === null) continue;
    const field = /^(\s+)(expr|for|labels|annotations): ?(.*)$/.exec(line);
    if (field) {
      const [, indent, key, value] = field;
      map = null;
      if (key === 'expr') {
        if (value === '|' || value === '>') {
          const body: string[] = [];
          while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > indent.length)) body.push(lines[++i].trim());
          rule.expr = body.join(value === '|' ? '\n' : ' ').trim();
        } else {
          rule.expr = unquote(value);
        }
      } else if (key === 'for') {
        rule.for = unquote(value);
      } else {
        map = rule[key as 'labels' | 'annotations'] = {};
      }
      continue;
    }
    const entry = /^\s+([a-z_]+): (.+)$/.exec(line);
    if (entry && map !== null) map[entry[1]] = unquote(entry[2]);
  }
  return rules;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.startsWith('"') && v.endsWith('"')) return JSON.parse(v) as string;
  if (v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
  return v;
}

/** Metric names a PromQL expression (or a label_values() query) uses, by their prefix. */
export function metricNamesIn(expr: string, prefix: string): string[] {
  const names = new Set<string>();
  // `{__name__=~"a_(b|c)"}` names metrics inside a regex: expand it, then read the rest.
  const rest = expr.replace(/__name__=~"([^"]+)"/g, (_, pattern: string) => {
    for (const name of expandAlternatives(pattern)) names.add(name);
    return '';
  });
  for (const match of rest.matchAll(new RegExp(`\\b${prefix}[a-zA-Z0-9_]*`, 'g'))) names.add(match[0]);
  return [...names].filter((name) => name.startsWith(prefix));
}

/** `a_(b|c)_d` → `a_b_d`, `a_c_d`: the small regexes dashboards use for names. */
function expandAlternatives(pattern: string): string[] {
  const group = /\(([^()]*)\)/.exec(pattern);
  if (group === null) return pattern.split('|');
  return group[1]
    .split('|')
    .flatMap((choice) => expandAlternatives(pattern.slice(0, group.index) + choice + pattern.slice(group.index + group[0].length)));
}

export function variableQuery(variable: DashboardVariable): string {
  if (typeof variable.query === 'string') return variable.query;
  return variable.query?.query ?? variable.definition ?? '';
}
