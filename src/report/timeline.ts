import { escapeHtml as esc } from './escape-html.js';
import type { LeakedConnection, LeakedResponse, Report, ResolvedLeak, TimelineEvent } from './json.js';

/**
 * A leak's timeline, read from a report's events: one lane per response and connection (and one
 * for what the server said), with the threshold that was passed and the moment leakwatch reported
 * it; then drawn as inline SVG, with no script and nothing loaded.
 */

/** `850 ms`, `1.2 s`, `3 min 5 s`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(abs < 10_000 ? 2 : 1).replace(/\.?0+$/, '')} s`;
  if (abs < 3_600_000) return `${Math.floor(abs / 60_000)} min ${Math.round((abs % 60_000) / 1000)} s`;
  return `${Math.floor(abs / 3_600_000)} h ${Math.round((abs % 3_600_000) / 60_000)} min`;
}

/** `12.3 kB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

export type SpanState = 'open' | 'stalled' | 'busy' | 'idle' | 'idle-in-transaction' | 'idle-in-transaction-aborted' | 'subscriber' | 'closed' | 'unknown' | 'server';

export interface Span {
  from: number;
  to: number;
  state: SpanState;
  /** Still going when the drawing ends. */
  open: boolean;
  title: string;
}

export interface Mark {
  at: number;
  event: 'wrote' | 'waited' | 'aborted' | 'finished' | 'released' | 'leaked' | 'confirmed';
  /** Shown beside the mark (aborted, finished, released); else only as its tooltip. */
  label: string | null;
  title: string;
}

export interface Lane {
  kind: 'response' | 'connection' | 'server';
  label: string;
  sublabel: string;
  spans: Span[];
  marks: Mark[];
}

export interface Timeline {
  start: number;
  end: number;
  lanes: Lane[];
  /** The deadline that was passed; `drawn` false when it lies far beyond what happened (an exit came first). */
  threshold: { at: number; label: string; drawn: boolean } | null;
  reported: { at: number; label: string } | null;
  /** The run went on past `end` (open spans are cut there): how much longer. */
  ranOnFor: number;
}

interface Moment {
  at: number;
  event: TimelineEvent['event'];
  bytes?: number;
}

const moments = (events: TimelineEvent[] | undefined): Moment[] => (events ?? []).map((e) => ({ at: Date.parse(e.at), event: e.event, bytes: e.bytes }));
const first = (list: Moment[], ...events: string[]) => list.find((m) => events.includes(m.event));
const last = (list: Moment[], ...events: string[]) => [...list].reverse().find((m) => events.includes(m.event));

const STATES = new Set(['busy', 'idle', 'idle-in-transaction', 'idle-in-transaction-aborted', 'subscriber', 'closed']);

/** A response's lane: open, then stalled once it was reported, until it closed or the run ended. */
function responseLane(events: Moment[], label: string, sublabel: string, runEnd: number): Lane {
  const started = first(events, 'started')?.at ?? events[0]?.at ?? runEnd;
  const leaked = first(events, 'leaked');
  const closed = first(events, 'finished', 'aborted');
  const until = closed?.at ?? runEnd;
  const spans: Span[] = [];
  const openUntil = leaked !== undefined ? Math.min(leaked.at, until) : until;
  spans.push({ from: started, to: openUntil, state: 'open', open: closed === undefined && leaked === undefined, title: `open ${formatDuration(openUntil - started)}` });
  if (leaked !== undefined && leaked.at < until) spans.push({ from: leaked.at, to: until, state: 'stalled', open: closed === undefined, title: `leaked: open ${formatDuration(until - leaked.at)} after it was reported` });
  const marks: Mark[] = [];
  for (const m of events) {
    const offset = `+${formatDuration(m.at - started)}`;
    if (m.event === 'wrote') marks.push({ at: m.at, event: 'wrote', label: null, title: `${offset}: a threshold check saw it write ${formatBytes(m.bytes ?? 0)} since the last one` });
    else if (m.event === 'waited') marks.push({ at: m.at, event: 'waited', label: null, title: `${offset}: a threshold check saw it wait on a busy connection or a command` });
    else if (m.event === 'aborted') marks.push({ at: m.at, event: 'aborted', label: 'aborted', title: `${offset}: aborted: closed without finishing (the client went away)` });
    else if (m.event === 'finished') marks.push({ at: m.at, event: 'finished', label: 'finished', title: `${offset}: finished` });
  }
  return { kind: 'response', label, sublabel, spans, marks };
}

/** A connection's lane: a span per state it was in, from its checkout to its release or the run's end. */
function connectionLane(events: Moment[], label: string, sublabel: string, runEnd: number, dropped: number): Lane {
  const acquired = first(events, 'acquired')?.at ?? events[0]?.at ?? runEnd;
  const released = first(events, 'released');
  const until = released?.at ?? runEnd;
  const spans: Span[] = [];
  const marks: Mark[] = [];
  let state: Span['state'] = dropped > 0 ? 'unknown' : 'idle';
  let since = acquired;
  const close = (to: number) => {
    if (to > since || spans.length === 0) spans.push({ from: since, to, state, open: false, title: `${state === 'unknown' ? `${dropped} earlier events not kept` : state} ${formatDuration(to - since)}` });
  };
  for (const m of events) {
    if (!STATES.has(m.event) || m.at > until) continue;
    if (m.event === state) continue;
    if (m.at > since) close(m.at);
    state = m.event as Span['state'];
    since = m.at;
  }
  close(until);
  if (released === undefined) spans[spans.length - 1].open = true;
  const leaked = first(events, 'leaked');
  if (leaked !== undefined) marks.push({ at: leaked.at, event: 'leaked', label: null, title: `+${formatDuration(leaked.at - acquired)}: reported leaked` });
  if (released !== undefined) marks.push({ at: released.at, event: 'released', label: 'released', title: `+${formatDuration(released.at - acquired)}: released` });
  return { kind: 'connection', label, sublabel, spans, marks };
}

const SERVER_NAME = { pg: 'PostgreSQL', redis: 'Redis' } as const;

/** What the server said, as the span of its state that it reported, ending when it answered. */
function serverLane(c: LeakedConnection, events: Moment[]): Lane | null {
  const server = c.server;
  const confirmed = last(events, 'confirmed');
  if (server === null || server.state === null || confirmed === undefined) return null;
  const id = server.pid !== undefined ? `pid ${server.pid}` : server.clientId !== undefined ? `client id ${server.clientId}` : '';
  const age = server.stateAgeMs ?? 0;
  const says = `${server.state}${server.stateAgeMs != null ? ` for ${formatDuration(server.stateAgeMs)}` : ''}`;
  return {
    kind: 'server',
    label: `${SERVER_NAME[c.kind]} says`,
    sublabel: [id, server.state].filter(Boolean).join(' · '),
    spans: [{ from: confirmed.at - age, to: confirmed.at, state: 'server', open: false, title: `${SERVER_NAME[c.kind]} ${id}: ${says}` }],
    marks: [{ at: confirmed.at, event: 'confirmed', label: null, title: `asked ${SERVER_NAME[c.kind]}: ${says}` }],
  };
}

function connectionLanes(c: LeakedConnection, runEnd: number): Lane[] {
  const events = moments(c.events);
  const lanes = [connectionLane(events, `${c.kind} connection`, c.pool, runEnd, c.eventsDropped ?? 0)];
  const server = serverLane(c, events);
  if (server !== null) lanes.push(server);
  return lanes;
}

/** The deadline a response passed: its last check that saw it busy, or its start, plus the threshold. */
function responseDeadline(events: Moment[], responseMs: number): number | null {
  const from = last(events, 'wrote', 'waited', 'started');
  return from === undefined ? null : from.at + responseMs;
}

type Deadline = { at: number; label: string } | null;

function thresholdOf(reason: string, own: Moment[], owner: Moment[], report: Report): Deadline {
  const { responseMs, connectionMs } = report.thresholds;
  const leaked = first(own, 'leaked')?.at ?? Infinity;
  if (reason === 'unclosed' || reason === 'open-at-exit') {
    const at = responseDeadline(own.filter((m) => m.at <= leaked), responseMs);
    return at === null ? null : { at, label: `response threshold ${formatDuration(responseMs)}` };
  }
  if (reason === 'held-by-leaked-response') {
    const at = responseDeadline(owner.filter((m) => m.at <= (first(owner, 'leaked')?.at ?? Infinity)), responseMs);
    return at === null ? null : { at, label: `response threshold ${formatDuration(responseMs)}` };
  }
  if (reason === 'held-after-response-closed') {
    const closed = first(owner, 'finished', 'aborted');
    return closed === undefined ? null : { at: closed.at + connectionMs, label: `connection threshold ${formatDuration(connectionMs)} after the close` };
  }
  const idle = last(
    own.filter((m) => m.at <= leaked),
    ...STATES,
  );
  const since = idle !== undefined && idle.event !== 'busy' ? idle.at : first(own, 'acquired')?.at;
  return since === undefined ? null : { at: since + connectionMs, label: `connection threshold ${formatDuration(connectionMs)} idle` };
}

function assemble(lanes: Lane[], deadline: Deadline, reportedAt: number | undefined, runEnd: number): Timeline {
  const times = lanes.flatMap((lane) => [...lane.spans.flatMap((s) => (s.open ? [s.from] : [s.from, s.to])), ...lane.marks.map((m) => m.at)]);
  if (reportedAt !== undefined) times.push(reportedAt);
  const start = Math.min(...times);
  let natural = Math.max(...times);
  // A deadline the process exited before is drawn only when it is near.
  const drawn = deadline !== null && (deadline.at <= natural || deadline.at - start <= 3 * Math.max(natural - start, 1));
  if (drawn) natural = Math.max(natural, deadline.at);
  let end = natural;
  let ranOnFor = 0;
  if (lanes.some((lane) => lane.spans.some((s) => s.open))) {
    // Open until the run ended: drawn to that end when it is near, else cut, saying how much later it was.
    if (runEnd - start <= 3 * Math.max(natural - start, 1)) end = Math.max(natural, runEnd);
    else {
      end = natural + 0.25 * Math.max(natural - start, 1);
      ranOnFor = runEnd - end;
    }
  }
  if (end - start < 10) end = start + 10;
  for (const lane of lanes) for (const span of lane.spans) if (span.to > end || span.open) span.to = end;
  return {
    start,
    end,
    lanes,
    threshold: deadline === null ? null : { ...deadline, drawn },
    reported: reportedAt === undefined ? null : { at: reportedAt, label: 'reported' },
    ranOnFor,
  };
}

/** The timeline of a leaked response and of the leaked connections it holds; null without events. */
export function responseTimeline(r: LeakedResponse, held: LeakedConnection[], report: Report): Timeline | null {
  if (r.events === undefined || r.events.length === 0) return null;
  const runEnd = Date.parse(report.endedAt);
  const own = moments(r.events);
  const lanes = [responseLane(own, `${r.method} ${r.path || r.route || ''}`, r.route && r.route !== r.path ? `request · route ${r.route}` : 'request', runEnd)];
  for (const c of held) lanes.push(...connectionLanes(c, runEnd));
  return assemble(lanes, thresholdOf(r.reason, own, [], report), first(own, 'leaked')?.at, runEnd);
}

/** The timeline of a leaked connection, under its owner's request when it has one; null without events. */
export function connectionTimeline(c: LeakedConnection, report: Report): Timeline | null {
  if (c.events === undefined || c.events.length === 0) return null;
  const runEnd = Date.parse(report.endedAt);
  const owner = moments(c.ownerEvents);
  const lanes: Lane[] = [];
  if (c.ownerEvents !== undefined) {
    const request = `${c.ownerMethod ?? ''} ${c.ownerPath ?? c.ownerRoute ?? ''}`.trim() || 'its request';
    lanes.push(responseLane(owner, request, c.ownerRoute && c.ownerRoute !== c.ownerPath ? `owner · route ${c.ownerRoute}` : 'owner', runEnd));
  }
  lanes.push(...connectionLanes(c, runEnd));
  const own = moments(c.events);
  return assemble(lanes, thresholdOf(c.reason, own, owner, report), first(own, 'leaked')?.at, runEnd);
}

/** A resolved leak's timeline, from its events (as a response, or a connection under its owner). */
export function resolvedTimeline(x: ResolvedLeak, report: Report): Timeline | null {
  if (x.events === undefined || x.events.length === 0) return null;
  const runEnd = Date.parse(report.endedAt);
  const own = moments(x.events);
  const owner = moments(x.ownerEvents);
  const lanes: Lane[] = [];
  if (x.kind === 'response') lanes.push(responseLane(own, x.what, x.route ? `request · route ${x.route}` : 'request', runEnd));
  else {
    if (x.ownerEvents !== undefined) lanes.push(responseLane(owner, x.route ?? 'its request', 'owner', runEnd));
    lanes.push(connectionLane(own, `${x.kind} connection`, x.what, runEnd, x.eventsDropped ?? 0));
  }
  return assemble(lanes, thresholdOf(x.reason, own, owner, report), first(own, 'leaked')?.at, runEnd);
}

// ---- drawing ---------------------------------------------------------------------------------

// Drawn at the width the page gives it beside the root cause (1280 px window), so text stays 1:1.
const WIDTH = 700;
const LABEL_WIDTH = 150;
const PLOT_LEFT = 162;
const PLOT_RIGHT = 672;
const TOP = 30;
const LANE = 34;
const BAR = 14;
const AXIS = 26;

/** A step of 1, 2 or 5 × 10^n ms giving about `count` ticks over `range`. */
function tickStep(range: number, count: number): number {
  const raw = range / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const num = (n: number) => (Math.round(n * 10) / 10).toString();

/** The timeline as an `<svg>` element; every text from the report is escaped. */
export function timelineSvg(t: Timeline, caption: string): string {
  const x = (at: number) => PLOT_LEFT + ((at - t.start) / (t.end - t.start)) * (PLOT_RIGHT - PLOT_LEFT);
  const height = TOP + t.lanes.length * LANE + AXIS + (t.ranOnFor > 0 ? 14 : 0);
  const bottom = TOP + t.lanes.length * LANE;
  const out: string[] = [];
  out.push(`<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="${esc(caption)}">`);
  out.push(`<title>${esc(caption)}</title>`);
  const step = tickStep(t.end - t.start, 6);
  for (let at = 0; t.start + at <= t.end + 0.5; at += step) {
    const px = num(x(t.start + at));
    out.push(`<line class="grid" x1="${px}" y1="${TOP - 6}" x2="${px}" y2="${bottom}"/>`);
    out.push(`<text class="tick" x="${px}" y="${bottom + 16}" text-anchor="middle">${at === 0 ? '0' : `+${esc(formatDuration(at))}`}</text>`);
  }
  t.lanes.forEach((lane, i) => {
    const y = TOP + i * LANE;
    const barY = y + (LANE - BAR) / 2;
    out.push(`<g class="lane lane-${lane.kind}">`);
    out.push(`<text class="lane-label" x="8" y="${y + 15}"><title>${esc(lane.label)}</title>${esc(clip(lane.label, 21))}</text>`);
    out.push(`<text class="lane-sublabel" x="8" y="${y + 28}"><title>${esc(lane.sublabel)}</title>${esc(clip(lane.sublabel, 25))}</text>`);
    for (const span of lane.spans) {
      const x1 = x(span.from);
      const w = Math.max(2, x(span.to) - x1);
      const h = lane.kind === 'server' ? BAR - 6 : BAR;
      const sy = lane.kind === 'server' ? barY + 3 : barY;
      out.push(`<rect class="span s-${span.state}" x="${num(x1)}" y="${num(sy)}" width="${num(w)}" height="${h}" rx="2"><title>${esc(span.title)}</title></rect>`);
      if (span.open) out.push(`<path class="open-end s-${span.state}" d="M${num(x1 + w)} ${num(sy - 3)} l8 ${num(h / 2 + 3)} l-8 ${num(h / 2 + 3)} z"><title>still open when the run ended</title></path>`);
    }
    for (const mark of lane.marks) {
      const mx = num(x(mark.at));
      const title = `<title>${esc(mark.title)}</title>`;
      if (mark.event === 'aborted') {
        out.push(`<g class="mark mark-aborted">${title}<path d="M${num(x(mark.at) - 5)} ${num(barY - 2)} l10 ${BAR + 4} m0 -${BAR + 4} l-10 ${BAR + 4}"/></g>`);
      } else if (mark.event === 'finished' || mark.event === 'released') {
        out.push(`<g class="mark mark-${mark.event}">${title}<line x1="${mx}" y1="${num(barY - 3)}" x2="${mx}" y2="${num(barY + BAR + 3)}"/></g>`);
      } else if (mark.event === 'wrote') {
        out.push(`<g class="mark mark-wrote">${title}<path d="M${mx} ${num(barY + BAR + 1)} l-4 6 h8 z"/></g>`);
      } else if (mark.event === 'waited') {
        out.push(`<g class="mark mark-waited">${title}<circle cx="${mx}" cy="${num(barY + BAR + 5)}" r="3"/></g>`);
      } else if (mark.event === 'leaked') {
        out.push(`<g class="mark mark-leaked">${title}<circle cx="${mx}" cy="${num(barY + BAR / 2)}" r="3.5"/></g>`);
      } else {
        out.push(`<g class="mark mark-confirmed">${title}<circle cx="${mx}" cy="${num(barY + BAR / 2)}" r="4"/></g>`);
      }
      if (mark.label !== null) {
        const right = x(mark.at) + 8 + mark.label.length * 7 < PLOT_RIGHT + 20;
        out.push(`<text class="mark-label mark-label-${mark.event}" x="${num(x(mark.at) + (right ? 7 : -7))}" y="${num(barY - 4)}" text-anchor="${right ? 'start' : 'end'}">${esc(mark.label)}</text>`);
      }
    }
    out.push('</g>');
  });
  if (t.threshold !== null && t.threshold.drawn) {
    const tx = num(x(t.threshold.at));
    out.push(`<g class="threshold"><title>${esc(t.threshold.label)}: +${esc(formatDuration(t.threshold.at - t.start))}</title>`);
    out.push(`<line x1="${tx}" y1="${TOP - 14}" x2="${tx}" y2="${bottom}"/>`);
    out.push(`<text x="${num(x(t.threshold.at) - 5)}" y="${TOP - 16}" text-anchor="end">threshold</text></g>`);
  }
  if (t.reported !== null) {
    const rx = x(t.reported.at);
    const right = rx + 110 < WIDTH;
    out.push(`<g class="reported"><title>reported: +${esc(formatDuration(t.reported.at - t.start))}</title>`);
    out.push(`<line x1="${num(rx)}" y1="${TOP - 14}" x2="${num(rx)}" y2="${bottom}"/>`);
    out.push(`<text x="${num(rx + (right ? 5 : -5))}" y="${TOP - 16}" text-anchor="${right ? 'start' : 'end'}">reported +${esc(formatDuration(t.reported.at - t.start))}</text></g>`);
  }
  if (t.ranOnFor > 0) out.push(`<text class="ran-on" x="${PLOT_RIGHT + 10}" y="${bottom + 31}" text-anchor="end">still open when the run ended, ${esc(formatDuration(t.ranOnFor))} later ▸</text>`);
  out.push(`<line class="divider" x1="${LABEL_WIDTH + 6}" y1="${TOP - 6}" x2="${LABEL_WIDTH + 6}" y2="${bottom}"/>`);
  out.push('</svg>');
  return out.join('');
}
