import type { EndOverride } from '../core/records.js';
import type { LeakedConnection, LeakedResponse, Report, ResolvedLeak } from './json.js';

/**
 * What the HTML report and the markdown summary say about a leak's cause, read from a report:
 * the `res.end` replacement that swallowed the call, the app's frame that acquired a connection,
 * and the request a leak belongs to.
 */

/** One line of an acquisition stack. */
export interface Frame {
  /** The function, when V8 named one. */
  fn: string | null;
  /** `file:line:column`, a file URL shown as a path. */
  location: string;
  /** In node_modules or Node itself: not the app's code. */
  library: boolean;
}

const LIBRARY = /[\\/]node_modules[\\/]|^node:/;

export function parseFrame(line: string): Frame {
  const text = line.trim().replace(/^at\s+/, '');
  const named = /^(.*?) \((.*)\)$/.exec(text);
  let location = named ? named[2] : text;
  if (location.startsWith('file://')) {
    try {
      location = decodeURIComponent(location.slice('file://'.length));
    } catch {
      // shown as it is
    }
  }
  return { fn: named ? named[1].replace(/^async /, '') || null : null, location, library: LIBRARY.test(location) };
}

export function framesOf(stack: string | null | undefined): Frame[] {
  if (!stack) return [];
  return stack
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(parseFrame);
}

/** The first frame of the app's own code, or the first frame when all are libraries'. */
export function acquisitionSite(stack: string | null | undefined): Frame | null {
  const frames = framesOf(stack);
  return frames.find((f) => !f.library) ?? frames[0] ?? null;
}

/** Replacements of `res.end` that were called and did not call the end they replaced: the swallowers. */
export function swallowingOverrides(response: LeakedResponse): EndOverride[] {
  return response.endOverrides.filter((o) => o.called && !o.calledThrough);
}

/** The value a leak is filtered and grouped by: its route template, else its path. */
export function routeOfResponse(r: LeakedResponse): string {
  return r.route ?? (r.path || '(unknown path)');
}

export function routeOfConnection(c: LeakedConnection): string {
  if (c.owner === null) return '(outside any request)';
  return c.ownerRoute ?? c.ownerPath ?? '(unknown path)';
}

export function routeOfResolved(x: ResolvedLeak): string {
  if (x.route) return x.route;
  if (x.kind === 'response') return x.what.split(' ').slice(1).join(' ') || '(unknown path)';
  return x.ownerEvents !== undefined ? '(unknown path)' : '(outside any request)';
}

/** `GET /orders/:id` for a response, by its route template where there is one. */
export function requestOfResponse(r: LeakedResponse): string {
  return `${r.method} ${r.route ?? r.path}`;
}

/** The request that owns a connection, `GET /orders/42`, or null for a connection acquired outside any. */
export function ownerRequest(c: LeakedConnection): string | null {
  if (c.owner === null) return null;
  const method = c.ownerMethod ? `${c.ownerMethod} ` : '';
  return `${method}${c.ownerPath ?? c.ownerRoute ?? 'an unknown path'}`;
}

/** One cause shared by some leaks, with how many it explains. */
export interface RootCause {
  /** `res.end` swallowed, a response that never ended otherwise, a connection acquired and kept. */
  kind: 'end-swallowed' | 'never-ended' | 'connection-kept';
  /** Where: `file:line:column` (with the function for a connection), or null when unknown. */
  site: string | null;
  /** What it is about when there is no site: a request (`GET /reports/:id`) or a pool. */
  subject: string | null;
  /** What it is, a short sentence without the site or the subject (the app's data). */
  what: string;
  responses: number;
  connections: number;
  /** The routes it was seen on (as routeOf… give them), in order of first sight. */
  routes: string[];
}

/**
 * The causes of the unresolved leaks of a report, the most frequent first. A connection held by a
 * leaked response counts under that response's cause: it is released once the response closes.
 */
export function rootCauses(report: Report): RootCause[] {
  const causes = new Map<string, RootCause>();
  const add = (key: string, init: Omit<RootCause, 'responses' | 'connections' | 'routes'>, route: string, responses: number, connections: number) => {
    let cause = causes.get(key);
    if (cause === undefined) causes.set(key, (cause = { ...init, responses: 0, connections: 0, routes: [] }));
    cause.responses += responses;
    cause.connections += connections;
    if (!cause.routes.includes(route)) cause.routes.push(route);
  };
  const heldByResponse = new Set<string>();
  for (const r of report.leakedResponses) {
    const route = routeOfResponse(r);
    const held = report.leakedConnections.filter((c) => c.owner === r.id && c.reason === 'held-by-leaked-response');
    for (const c of held) heldByResponse.add(c.id);
    const swallowers = swallowingOverrides(r);
    if (swallowers.length > 0) {
      for (const o of swallowers) add(`end ${o.at}`, { kind: 'end-swallowed', site: o.at, subject: null, what: 'replaced res.end, and the replacement never called the end it replaced' }, route, 1, held.length);
    } else {
      const what = r.reason === 'open-at-exit' ? 'still open when the process exited' : 'never ended: nothing called res.end, or a stream piped into the response stopped';
      add(`never ${r.method} ${route} ${r.reason}`, { kind: 'never-ended', site: null, subject: `${r.method} ${route}`, what }, route, 1, held.length);
    }
  }
  for (const c of report.leakedConnections) {
    if (heldByResponse.has(c.id)) continue;
    const site = acquisitionSite(c.acquiredAt);
    const where = site === null ? null : site.fn ? `${site.fn} (${site.location})` : site.location;
    const what = `acquired a ${c.kind} connection that was never released (${c.reason}, ${c.state})`;
    add(`kept ${where ?? c.pool} ${c.reason}`, { kind: 'connection-kept', site: where, subject: where === null ? c.pool : null, what }, routeOfConnection(c), 0, 1);
  }
  return [...causes.values()].sort((a, b) => b.responses + b.connections - (a.responses + a.connections));
}

/** The folder every one of `paths` is under (ending in `/`), or '' when they share none beyond `/`. */
export function commonFolder(paths: string[]): string {
  const absolute = paths.filter((p) => p.startsWith('/'));
  if (absolute.length === 0) return '';
  let prefix = absolute[0].slice(0, absolute[0].lastIndexOf('/') + 1);
  for (const p of absolute) while (prefix !== '' && !p.startsWith(prefix)) prefix = prefix.slice(0, prefix.lastIndexOf('/', prefix.length - 2) + 1);
  return prefix === '/' ? '' : prefix;
}

/** The source paths a report shows (app frames and `res.end` sites), for commonFolder. */
export function sourcePaths(report: Report): string[] {
  const paths: string[] = [];
  for (const r of report.leakedResponses) for (const o of r.endOverrides) paths.push(o.at);
  for (const c of report.leakedConnections) for (const f of framesOf(c.acquiredAt)) if (!f.library) paths.push(f.location);
  return paths;
}
