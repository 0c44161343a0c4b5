import { createHash } from 'node:crypto';
import { escapeHtml as esc } from './escape-html.js';
import { SCRIPT, STYLE } from './html-assets.js';
import type { LeakedConnection, LeakedResponse, Report, ResolvedLeak, TimelineEvent } from './json.js';
import {
  commonFolder,
  framesOf,
  ownerRequest,
  rootCauses,
  routeOfConnection,
  routeOfResolved,
  routeOfResponse,
  sourcePaths,
  swallowingOverrides,
  type Frame,
} from './root-cause.js';
import { connectionTimeline, formatBytes, formatDuration, resolvedTimeline, responseTimeline, timelineSvg, type Timeline } from './timeline.js';

/**
 * The HTML report: one self-contained page (inline style, script and SVG; it loads nothing, and
 * its Content-Security-Policy forbids loading anything) that reads without JavaScript. Every
 * string from the report is escaped: paths, routes and stack frames are the app's data.
 */

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

const plural = (n: number, word: string) => `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;

const REASON_TEXT: Record<string, string> = {
  unclosed: 'never closed',
  'open-at-exit': 'open at exit',
  'held-by-leaked-response': 'held by a leaked response',
  'held-after-response-closed': 'held after its response closed',
  'idle-past-threshold': 'idle past the threshold',
};

const SERVER_NAME = { pg: 'PostgreSQL', redis: 'Redis' } as const;

/** How a source location is shown: the part under the report's common folder, the file name bold. */
class Sites {
  constructor(readonly root: string) {}

  html(location: string): string {
    const shown = this.root !== '' && location.startsWith(this.root) ? location.slice(this.root.length) : location;
    const cut = shown.lastIndexOf('/') + 1;
    return `<code class="site" title="${esc(location)}"><span class="dir">${esc(shown.slice(0, cut))}</span><b>${esc(shown.slice(cut))}</b></code>`;
  }
}

function badge(reason: string, resolved = false): string {
  return `<span class="badge${resolved ? ' resolved' : ''}" title="${esc(reason)}">${esc(REASON_TEXT[reason] ?? reason)}</span>`;
}

function timelineBlock(timeline: Timeline | null, caption: string): string {
  if (timeline === null) return '<p class="no-timeline">No timeline: this report has no events (it was written by leakwatch 0.1.0).</p>';
  return `<div class="timeline-box">${timelineSvg(timeline, caption)}</div>`;
}

function eventsTable(rows: Array<{ at: string; who: string; event: string; detail: string }>, start: number): string {
  if (rows.length === 0) return '';
  const sorted = [...rows].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const body = sorted
    .map((row) => `<tr><td class="n mono">+${esc(formatDuration(Date.parse(row.at) - start))}</td><td>${esc(row.who)}</td><td>${esc(row.event)}</td><td>${esc(row.detail)}</td><td class="mono">${esc(row.at)}</td></tr>`)
    .join('');
  return `<details class="events"><summary>All events (${rows.length})</summary><table><thead><tr><th class="n">at</th><th>of</th><th>event</th><th></th><th>time (UTC)</th></tr></thead><tbody>${body}</tbody></table></details>`;
}

const eventRows = (events: TimelineEvent[] | undefined, who: string) =>
  (events ?? []).map((e) => ({ at: e.at, who, event: e.event, detail: e.bytes !== undefined ? formatBytes(e.bytes) : '' }));

function framesHtml(stack: string | null, sites: Sites): string {
  const frames = framesOf(stack);
  if (frames.length === 0) return '<p class="empty">No stack was captured (LEAKWATCH_ACQUIRE_STACK_FRAMES=0).</p>';
  // The same frame acquisitionSite() names: the app's first, else the first.
  const own = frames.findIndex((f) => !f.library);
  const site = frames[own >= 0 ? own : 0];
  const item = (f: Frame) => `<li${f === site ? ' class="first"' : ''}>${f.fn ? `<span class="fn">${esc(f.fn)}</span> ` : ''}${sites.html(f.location)}</li>`;
  // The app's frames in order; each run of library frames folds into one line.
  const parts: string[] = [];
  for (let i = 0; i < frames.length; ) {
    if (!frames[i].library || frames[i] === site) {
      parts.push(item(frames[i++]));
      continue;
    }
    const run: Frame[] = [];
    while (i < frames.length && frames[i].library && frames[i] !== site) run.push(frames[i++]);
    parts.push(`<li><details><summary>${plural(run.length, 'library frame')}</summary><ul>${run.map(item).join('')}</ul></details></li>`);
  }
  return `<ul class="frames">${parts.join('')}</ul>`;
}

function serverHtml(c: LeakedConnection): string {
  const s = c.server;
  if (s === null) return '';
  const id = s.pid !== undefined ? `pid ${s.pid}` : s.clientId !== undefined ? `client id ${s.clientId}` : '';
  const says =
    s.state === null
      ? 'not confirmed: it was found as the process ended, with no time left to ask'
      : `${s.state}${s.stateAgeMs != null ? ` for ${formatDuration(s.stateAgeMs)}` : ''}`;
  return `<h4>${SERVER_NAME[c.kind]} says</h4><p>${esc([id, says].filter(Boolean).join(': '))}</p>`;
}

function connectionCause(c: LeakedConnection, sites: Sites): string {
  return `<h4>Acquired at</h4>${framesHtml(c.acquiredAt, sites)}${serverHtml(c)}`;
}

function overridesHtml(r: LeakedResponse, sites: Sites): string {
  const swallowers = swallowingOverrides(r);
  const lines = r.endOverrides.map((o) => {
    const verdict = !o.called
      ? '<span class="verdict meh">never called</span>'
      : o.calledThrough
        ? '<span class="verdict ok">called, called through</span>'
        : '<span class="verdict bad">called, never called the end it replaced</span>';
    return `<li${swallowers.includes(o) ? ' class="swallowed"' : ''}>${sites.html(o.at)} ${verdict}</li>`;
  });
  let lead: string;
  if (swallowers.length > 0) lead = '<p><b>res.end was replaced, and the replacement swallowed the call:</b></p>';
  else if (r.endOverrides.length > 0) lead = '<p>res.end was replaced; no replacement swallowed a call, so nothing called res.end at all:</p>';
  else lead = `<p>Nothing called res.end${r.connections.length > 0 ? '' : ', and the response waits on nothing leakwatch follows'}: the handler never answered, or a stream piped into the response stopped.</p>`;
  return `<h4>res.end</h4>${lead}${lines.length > 0 ? `<ul>${lines.join('')}</ul>` : ''}`;
}

function whyResponse(r: LeakedResponse, report: Report): string {
  if (r.reason === 'open-at-exit') return `Still open when its process exited, ${formatDuration(r.ageMs)} after it started.`;
  return `It wrote nothing and waited on nothing for the response threshold (${formatDuration(report.thresholds.responseMs)}), so leakwatch reported it; it was still open ${formatDuration(r.ageMs)} after it started.`;
}

function whyConnection(c: LeakedConnection, report: Report): string {
  const request = ownerRequest(c);
  const aborted = c.ownerEvents?.some((e) => e.event === 'aborted') ?? false;
  switch (c.reason) {
    case 'held-by-leaked-response':
      return `Held, ${c.state}, by ${request ?? 'a response'} that never closed: nothing releases it until that response ends.`;
    case 'held-after-response-closed':
      return `Still held, ${c.state}, a connection threshold (${formatDuration(report.thresholds.connectionMs)}) after ${request ?? 'its request'} ${aborted ? 'was aborted (the client went away)' : 'finished'}: the code that releases it did not run.`;
    default:
      return `A pool checkout outside any request, ${c.state} for the connection threshold (${formatDuration(report.thresholds.connectionMs)}).`;
  }
}

function responseCard(r: LeakedResponse, held: LeakedConnection[], report: Report, sites: Sites, index: number): string {
  const timeline = responseTimeline(r, held, report);
  const reasons = [r.reason, ...held.map((c) => c.reason)];
  const facts = [`open ${formatDuration(r.ageMs)}`, held.length > 0 ? `holds ${plural(held.length, 'connection')}` : null, r.id].filter(Boolean).join(' · ');
  const pending = (r.pendingCommands ?? []).map(
    (p) => `<li>waits on <code>${esc(p.command.toUpperCase())}</code> sent ${esc(formatDuration(p.ageMs))} before the report, on the shared connection ${esc(p.connection)}</li>`,
  );
  const heldHtml = held
    .map(
      (c) =>
        `<div class="held"><p><b>Holds</b> a ${esc(c.kind)} connection, <code>${esc(c.id)}</code> on ${esc(c.pool)}: ${esc(c.state)} for ${esc(formatDuration(c.idleMs))}.</p>${connectionCause(c, sites)}</div>`,
    )
    .join('');
  const rows = [...eventRows(r.events, 'request'), ...held.flatMap((c) => eventRows(c.events, c.id))];
  return `<article class="leak" id="leak-${index}" data-id="${esc(r.id)}" data-state="open" data-count="${1 + held.length}" data-route="${esc(routeOfResponse(r))}" data-reasons="${esc(reasons.join(' '))}">
<div class="leak-head">${badge(r.reason)}<h3>${esc(r.method)} ${esc(r.path)}</h3>${r.route && r.route !== r.path ? `<span class="route">route ${esc(r.route)}</span>` : ''}<span class="facts">${esc(facts)}</span></div>
<p class="why">${esc(whyResponse(r, report))}</p>
<div class="leak-body">${timelineBlock(timeline, `Timeline of ${r.method} ${r.path}`)}<aside class="cause">${overridesHtml(r, sites)}${pending.length > 0 ? `<h4>Waits on</h4><ul>${pending.join('')}</ul>` : ''}${heldHtml}</aside></div>
${timeline === null ? '' : eventsTable(rows, timeline.start)}
</article>`;
}

function connectionCard(c: LeakedConnection, report: Report, sites: Sites, index: number): string {
  const timeline = connectionTimeline(c, report);
  const request = ownerRequest(c);
  const owner =
    c.owner === null
      ? 'acquired outside any request'
      : `owned by ${request ?? c.owner}${c.ownerRoute && c.ownerRoute !== c.ownerPath ? ` (route ${c.ownerRoute})` : ''}, ${c.ownerState === 'open' ? 'still open' : 'closed'}`;
  const facts = [`${c.state} for ${formatDuration(c.idleMs)}`, `held ${formatDuration(c.heldMs)}`, c.id].join(' · ');
  const rows = [...eventRows(c.ownerEvents, 'request'), ...eventRows(c.events, c.id)];
  return `<article class="leak" id="leak-${index}" data-id="${esc(c.id)}" data-state="open" data-count="1" data-route="${esc(routeOfConnection(c))}" data-reasons="${esc(c.reason)}">
<div class="leak-head">${badge(c.reason)}<h3>${esc(c.kind)} connection · ${esc(c.pool)}</h3><span class="route">${esc(owner)}</span><span class="facts">${esc(facts)}</span></div>
<p class="why">${esc(whyConnection(c, report))}</p>
<div class="leak-body">${timelineBlock(timeline, `Timeline of ${c.kind} connection ${c.id}`)}<aside class="cause">${connectionCause(c, sites)}</aside></div>
${timeline === null ? '' : eventsTable(rows, timeline.start)}
</article>`;
}

function resolvedCard(x: ResolvedLeak, report: Report, index: number): string {
  const timeline = resolvedTimeline(x, report);
  const took = Date.parse(x.resolvedAt) - Date.parse(x.detectedAt);
  const what = x.kind === 'response' ? x.what : `${x.kind} connection · ${x.what}`;
  const how = x.kind === 'response' ? 'finished' : 'was released';
  return `<article class="leak" id="resolved-${index}" data-id="${esc(x.id)}" data-state="resolved" data-route="${esc(routeOfResolved(x))}" data-reasons="${esc(x.reason)}">
<div class="leak-head">${badge(x.reason, true)}<h3>${esc(what)}</h3>${x.route ? `<span class="route">route ${esc(x.route)}</span>` : ''}<span class="facts">${esc(x.id)}</span></div>
<div class="leak-body">${timelineBlock(timeline, `Timeline of ${what}`)}<aside class="cause"><h4>Resolved</h4><p>It ${how} ${esc(formatDuration(took))} after it was reported (${esc(REASON_TEXT[x.reason] ?? x.reason)}).</p></aside></div>
</article>`;
}

function statsHtml(report: Report): string {
  const s = report.summary;
  const stat = (n: number, label: string, bad = false) => `<div class="stat${bad && n > 0 ? ' bad' : ''}"><div class="n">${n.toLocaleString('en')}</div><div class="k">${label}</div></div>`;
  const t = report.thresholds;
  return `<section class="stats">${stat(s.responses, 'responses')}${stat(s.aborted, 'aborted')}${stat(s.leakedResponses, 'leaked responses', true)}${stat(s.leakedConnections, 'leaked connections', true)}${stat(s.resolved, 'resolved')}<div class="stat"><div class="k">thresholds</div><div class="thresholds">response ${esc(formatDuration(t.responseMs))}<br>connection ${esc(formatDuration(t.connectionMs))}</div></div></section>`;
}

interface RouteRow {
  route: string;
  methods: Set<string>;
  reasons: Set<string>;
  responses: number;
  connections: number;
  resolved: number;
}

function byRoute(report: Report): RouteRow[] {
  const rows = new Map<string, RouteRow>();
  const row = (route: string) => {
    let r = rows.get(route);
    if (r === undefined) rows.set(route, (r = { route, methods: new Set(), reasons: new Set(), responses: 0, connections: 0, resolved: 0 }));
    return r;
  };
  for (const r of report.leakedResponses) {
    const entry = row(routeOfResponse(r));
    entry.methods.add(r.method);
    entry.responses++;
    entry.reasons.add(r.reason);
  }
  for (const c of report.leakedConnections) {
    const entry = row(routeOfConnection(c));
    if (c.ownerMethod) entry.methods.add(c.ownerMethod);
    entry.connections++;
    entry.reasons.add(c.reason);
  }
  for (const x of report.resolved ?? []) row(routeOfResolved(x)).resolved++;
  return [...rows.values()].sort((a, b) => b.responses + b.connections - (a.responses + a.connections) || b.resolved - a.resolved);
}

function overviewHtml(report: Report, sites: Sites): string {
  const rows = byRoute(report);
  if (rows.length === 0) return '';
  const table = rows
    .map(
      (r) =>
        `<tr data-filter-route="${esc(r.route)}"><td><code>${r.methods.size > 0 ? `<span class="method">${esc([...r.methods].join(' '))}</span> ` : ''}${esc(r.route)}</code></td><td>${[...r.reasons].map((reason) => badge(reason)).join(' ')}</td><td class="n">${r.responses}</td><td class="n">${r.connections}</td><td class="n">${r.resolved}</td></tr>`,
    )
    .join('');
  const causes = rootCauses(report).slice(0, 10);
  const causeList = causes
    .map((c) => {
      const counts = [c.responses > 0 ? plural(c.responses, 'response') : null, c.connections > 0 ? plural(c.connections, 'connection') : null].filter(Boolean).join(', ');
      const where = c.site === null ? '' : `${c.kind === 'connection-kept' ? siteWithFunction(c.site, sites) : sites.html(c.site)} — `;
      const subject = c.subject === null ? '' : `<code>${esc(c.subject)}</code> `;
      return `<li><span class="count">${esc(counts)}</span> · ${where}${subject}${esc(c.what)} <span class="routes">· ${esc(c.routes.join(', '))}</span></li>`;
    })
    .join('');
  return `<h2>Leaks by route</h2><table><thead><tr><th>route</th><th>reasons</th><th class="n">leaked responses</th><th class="n">leaked connections</th><th class="n">resolved</th></tr></thead><tbody>${table}</tbody></table>${
    causes.length > 0 ? `<h2>Root causes</h2><ol class="causes">${causeList}</ol>` : ''
  }`;
}

/** `fn (file:line:col)` with the location shown as a site. */
function siteWithFunction(site: string, sites: Sites): string {
  const match = /^(.*) \((.*)\)$/.exec(site);
  return match ? `<span class="fn">${esc(match[1])}</span> ${sites.html(match[2])}` : sites.html(site);
}

function legendHtml(): string {
  const sw = (cls: string, label: string) => `<span><i class="sw ${cls}"></i>${label}</span>`;
  return `<div class="legend">${[
    sw('s-open', 'response open'),
    sw('s-stalled', 'leaked'),
    sw('s-busy', 'busy'),
    sw('s-idle', 'idle'),
    sw('s-idle-in-transaction', 'idle in transaction'),
    sw('s-subscriber', 'subscriber'),
    sw('s-closed', 'closed (socket gone)'),
    sw('s-server', "server's view"),
    sw('l-threshold', 'threshold'),
    sw('l-reported', 'reported'),
    '<span><i class="sw m-aborted">✕</i>aborted</span>',
    '<span><i class="sw m-wrote">▲</i>wrote (seen at a check)</span>',
  ].join('')}</div>`;
}

function filtersHtml(report: Report): string {
  const routes = new Set<string>();
  const reasons = new Set<string>();
  const seen = (route: string, reason: string) => {
    routes.add(route);
    reasons.add(reason);
  };
  for (const r of report.leakedResponses) seen(routeOfResponse(r), r.reason);
  for (const c of report.leakedConnections) seen(routeOfConnection(c), c.reason);
  for (const x of report.resolved ?? []) seen(routeOfResolved(x), x.reason);
  const options = (values: Set<string>, all: string, text: (v: string) => string) =>
    `<option value="">${all}</option>${[...values]
      .sort()
      .map((v) => `<option value="${esc(v)}">${esc(text(v))}</option>`)
      .join('')}`;
  return `<nav class="filters" id="filters" aria-label="Filter the leaks"><label>Route <select id="filter-route">${options(routes, 'all routes', (v) => v)}</select></label><label>Reason <select id="filter-reason">${options(reasons, 'all reasons', (v) => REASON_TEXT[v] ?? v)}</select></label><button type="button" id="filter-reset" hidden>clear</button><span class="shown" id="filter-shown"></span></nav>`;
}

function processesHtml(report: Report): string {
  const processes = report.processes ?? [];
  if (processes.length === 0) return '';
  const items = processes
    .map((p) => `<li><code>${esc(p.pid)}</code> <code>${esc(p.argv.join(' '))}</code>${p.reportMissing ? ` — its report is missing (${esc(p.reportMissing)})` : ''}</li>`)
    .join('');
  return `<details><summary>${plural(processes.length, 'process')}</summary><ul>${items}</ul></details>`;
}

function title(report: Report): string {
  const s = report.summary;
  if (s.leakedResponses + s.leakedConnections === 0) return s.resolved > 0 ? `No leaks left (${plural(s.resolved, 'resolved leak')})` : 'No leaks';
  return `${plural(s.leakedResponses, 'leaked response')}, ${plural(s.leakedConnections, 'leaked connection')}`;
}

/** The HTML report of `report`, as one page that needs nothing else. */
export function formatHtml(report: Report): string {
  const sites = new Sites(commonFolder(sourcePaths(report)));
  const status = title(report);
  const leaked = report.summary.leakedResponses + report.summary.leakedConnections > 0;
  const started = Date.parse(report.startedAt);
  const ended = Date.parse(report.endedAt);
  const heldBy = new Map<string, LeakedConnection[]>();
  const shownWithResponse = new Set<string>();
  const responseIds = new Set(report.leakedResponses.map((r) => r.id));
  for (const c of report.leakedConnections) {
    if (c.owner === null || !responseIds.has(c.owner) || c.reason !== 'held-by-leaked-response') continue;
    heldBy.set(c.owner, [...(heldBy.get(c.owner) ?? []), c]);
    shownWithResponse.add(c.id);
  }
  let index = 0;
  const cards = [
    ...report.leakedResponses.map((r) => responseCard(r, heldBy.get(r.id) ?? [], report, sites, index++)),
    ...report.leakedConnections.filter((c) => !shownWithResponse.has(c.id)).map((c) => connectionCard(c, report, sites, index++)),
  ];
  const resolved = (report.resolved ?? []).map((x, i) => resolvedCard(x, report, i));
  const hidden = report.summary.leakedResponses + report.summary.leakedConnections - report.leakedResponses.length - report.leakedConnections.length;
  const filteredOut = '<p class="empty filtered-out" hidden>Nothing here matches the filter.</p>';
  const body = `<svg class="svg-defs" aria-hidden="true" focusable="false"><defs><pattern id="lw-stalled" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect class="p-soft" width="6" height="6"/><rect class="p-hard" width="3" height="6"/></pattern></defs></svg>
<header><div class="top"><span class="brand">leakwatch report</span><h1 class="status ${leaked ? 'bad' : 'good'}">${esc(status)}</h1></div>
<p class="run">A run of ${esc(formatDuration(ended - started))} from ${esc(report.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))} · ${esc(plural(report.processes?.length ?? 0, 'process'))} · leakwatch ${esc(report.tool.version)}${sites.root ? ` · source paths under <code>${esc(sites.root)}</code>` : ''}</p></header>
${statsHtml(report)}
${overviewHtml(report, sites)}
${leaked || resolved.length > 0 ? filtersHtml(report) : ''}
<section id="leaks" data-list><h2>Leaks</h2>${cards.length > 0 ? `${legendHtml()}${cards.join('\n')}${filteredOut}` : `<p class="empty">No leak is left unresolved${report.summary.responses > 0 ? ` in ${plural(report.summary.responses, 'response')}` : ''}.</p>`}${
    hidden > 0 ? `<p class="section-note">${plural(hidden, 'more leak')} counted but not kept in detail; raise LEAKWATCH_MAX_REPORTED_LEAKS.</p>` : ''
  }</section>
${resolved.length > 0 ? `<section id="resolved" class="resolved-list" data-list><h2>Resolved (${resolved.length})</h2><p class="section-note">Leaks that ended later: the response finished, or the connection was released. They do not fail a run.</p>${resolved.join('\n')}${filteredOut}</section>` : ''}
<footer>${processesHtml(report)}<p>Written by leakwatch ${esc(report.tool.version)} from a report of schema version ${esc(report.schemaVersion)}. This page loads nothing: its style, script and drawings are inline.</p></footer>`;
  const csp = `default-src 'none'; style-src ${sha256(STYLE)}; script-src ${sha256(SCRIPT)}; img-src 'none'; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leakwatch: ${esc(status)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<script>${SCRIPT}</script>
</body>
</html>
`;
}
