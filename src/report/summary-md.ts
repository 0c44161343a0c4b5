import type { Report } from './json.js';
import { commonFolder, rootCauses, routeOfConnection, routeOfResponse, sourcePaths } from './root-cause.js';
import { formatDuration } from './timeline.js';

/**
 * The short markdown summary of a report, for CI job summaries (`$GITHUB_STEP_SUMMARY`): leaks by
 * route and reason, the top root causes, and where the HTML report is. Routes, paths and sites
 * are the app's data: they go into code spans, where markdown and HTML mean nothing, and every
 * other piece of text is escaped.
 */

export interface SummaryOptions {
  /** The HTML report's file, as given to --html. */
  html?: string;
  /** Where the CI run's artifacts are listed (see githubArtifactsUrl). */
  artifactsUrl?: string;
}

const MAX_ROUTES = 15;
const MAX_CAUSES = 5;

/** Text as a code span: nothing in it is markdown or HTML. In a table, `|` is escaped as GFM asks. */
function code(value: string, inTable = false): string {
  let text = value.replace(/[\r\n]+/g, ' ');
  if (inTable) text = text.replace(/\|/g, '\\|');
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Plain text with markdown's and HTML's special characters escaped. */
function text(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').replace(/[\\`*_{}[\]<>#+!|~&]/g, (c) => `\\${c}`);
}

const plural = (n: number, word: string) => `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;

/** The page of a GitHub Actions run, at its artifacts, from the variables a runner sets; undefined elsewhere. */
export function githubArtifactsUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repository, GITHUB_RUN_ID: run } = env;
  if (!server || !repository || !run || !/^https?:\/\//.test(server) || !/^[\w.-]+\/[\w.-]+$/.test(repository) || !/^\d+$/.test(run)) return undefined;
  return `${server.replace(/\/+$/, '')}/${repository}/actions/runs/${run}#artifacts`;
}

export function formatSummaryMarkdown(report: Report, options: SummaryOptions = {}): string {
  const s = report.summary;
  const leaks = s.leakedResponses + s.leakedConnections;
  const lines: string[] = [];
  lines.push(
    leaks === 0 ? '### leakwatch: no leaks' : `### leakwatch: ${plural(s.leakedResponses, 'leaked response')}, ${plural(s.leakedConnections, 'leaked connection')}`,
    '',
    `${plural(s.responses, 'response')} (${s.aborted.toLocaleString('en')} aborted)${s.resolved > 0 ? `, ${plural(s.resolved, 'leak')} resolved later` : ''}; ` +
      `thresholds: response ${formatDuration(report.thresholds.responseMs)}, connection ${formatDuration(report.thresholds.connectionMs)}.`,
  );

  const rows = new Map<string, { methods: Set<string>; reasons: Set<string>; responses: number; connections: number }>();
  const row = (route: string) => {
    let r = rows.get(route);
    if (r === undefined) rows.set(route, (r = { methods: new Set(), reasons: new Set(), responses: 0, connections: 0 }));
    return r;
  };
  for (const r of report.leakedResponses) {
    const entry = row(routeOfResponse(r));
    entry.methods.add(r.method);
    entry.reasons.add(r.reason);
    entry.responses++;
  }
  for (const c of report.leakedConnections) {
    const entry = row(routeOfConnection(c));
    if (c.ownerMethod) entry.methods.add(c.ownerMethod);
    entry.reasons.add(c.reason);
    entry.connections++;
  }
  if (rows.size > 0) {
    const sorted = [...rows.entries()].sort(([, a], [, b]) => b.responses + b.connections - (a.responses + a.connections));
    lines.push('', '| route | reasons | leaked responses | leaked connections |', '| --- | --- | ---: | ---: |');
    for (const [route, r] of sorted.slice(0, MAX_ROUTES)) {
      const request = `${[...r.methods].join(' ')} ${route}`.trim();
      lines.push(`| ${code(request, true)} | ${[...r.reasons].map((reason) => text(reason)).join(', ')} | ${r.responses} | ${r.connections} |`);
    }
    if (sorted.length > MAX_ROUTES) lines.push('', `${sorted.length - MAX_ROUTES} more routes in the full report.`);
  }

  const causes = rootCauses(report).slice(0, MAX_CAUSES);
  if (causes.length > 0) {
    const root = commonFolder(sourcePaths(report));
    const shorten = (site: string) => (root !== '' ? site.split(root).join('') : site);
    lines.push('', '**Top root causes**', '');
    causes.forEach((c, i) => {
      const counts = [c.responses > 0 ? plural(c.responses, 'response') : null, c.connections > 0 ? plural(c.connections, 'connection') : null].filter(Boolean).join(', ');
      const where = c.site !== null ? `${code(shorten(c.site))} ` : c.subject !== null ? `${code(c.subject)} ` : '';
      lines.push(`${i + 1}. ${counts}: ${where}${text(c.what)} (on ${c.routes.map((route) => code(route)).join(', ')})`);
    });
  }

  if (options.html !== undefined) {
    const where = options.artifactsUrl !== undefined ? `, in the [artifacts of this run](${options.artifactsUrl})` : '';
    lines.push('', `The HTML report, with a timeline of each leak: ${code(options.html)}${where}.`);
  }
  return lines.join('\n') + '\n';
}
