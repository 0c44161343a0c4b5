import { frameKind } from '../core/stack.js';
import type { LeakedConnection, LeakedResponse, Report } from './json.js';

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

type Paint = (code: number, text: string) => string;

function painter(colour: boolean): Paint {
  return colour ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
}

const seconds = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

export function describeLeakedResponse(r: LeakedResponse, paint: Paint = painter(false)): string {
  const why = r.reason === 'unclosed' ? `never closed (open ${seconds(r.ageMs)})` : 'still open at exit';
  const lines = [`${paint(1, `${r.method} ${r.path}`)}${r.route ? ` (route ${r.route})` : ''}: ${why} [${r.reason}]`];
  for (const o of r.endOverrides) {
    const verdict = !o.called
      ? 'never called'
      : o.calledThrough
        ? 'called, and called through'
        : paint(31, 'called, but did not call the end it replaced');
    lines.push(`  res.end replaced at ${o.at}: ${verdict}`);
  }
  if (r.connections.length > 0) lines.push(`  holds ${r.connections.join(', ')}`);
  for (const p of r.pendingCommands ?? []) lines.push(`  waits on ${p.command.toUpperCase()} sent ${seconds(p.ageMs)} ago on shared connection ${p.connection}`);
  return lines.join('\n');
}

/** `GET /orders/42 (route /orders/:id)`, as a leaked response's first line names its request. */
function ownerRequest(c: LeakedConnection): string | null {
  const method = c.ownerMethod ? `${c.ownerMethod} ` : '';
  if (c.ownerPath) return `${method}${c.ownerPath}${c.ownerRoute && c.ownerRoute !== c.ownerPath ? ` (route ${c.ownerRoute})` : ''}`;
  if (c.ownerRoute) return `${method}route ${c.ownerRoute}`;
  return null;
}

export function describeLeakedConnection(c: LeakedConnection, paint: Paint = painter(false)): string {
  const request = ownerRequest(c);
  const owner = c.owner === null ? 'acquired outside any request' : `owned by ${c.owner}, ${request !== null ? `${request}, ` : ''}${c.ownerState}`;
  const lines = [`${paint(1, `${c.kind} ${c.id}`)} on ${c.pool}: ${c.state} for ${seconds(c.idleMs)}, held ${seconds(c.heldMs)} [${c.reason}]`, `  ${owner}`];
  if (c.server) {
    const id = c.server.pid !== undefined ? `pid ${c.server.pid}` : c.server.clientId !== undefined ? `client id ${c.server.clientId}` : 'server';
    // A leak found as the process ends has the server's id, but no time was left to ask it.
    if (c.server.state === null) lines.push(`  server: ${id}, state not confirmed`);
    else lines.push(`  server says: ${id}, ${c.server.state}${c.server.stateAgeMs != null ? ` for ${seconds(c.server.stateAgeMs)}` : ''}`);
  }
  if (c.acquiredAt) {
    // The app's own frames say where; library and framework frames are in the JSON report.
    const frames = c.acquiredAt.split('\n');
    const own = frames.filter((f) => frameKind(f) === 'app');
    const shown = (own.length > 0 ? own : frames).slice(0, 3);
    const more = frames.length - shown.length;
    if (more > 0) shown.push(`(${more} more frame${more === 1 ? '' : 's'} in the JSON report)`);
    lines.push('  acquired:', indent(shown.join('\n'), '    '));
  }
  return lines.join('\n');
}

/** The readable report: what leaked, why, and what it holds. */
export function formatReport(report: Report, options: { colour?: boolean } = {}): string {
  const paint = painter(options.colour ?? false);
  const s = report.summary;
  const head =
    `leakwatch: ${s.responses} response${s.responses === 1 ? '' : 's'} (${s.aborted} aborted), ` +
    `${s.leakedResponses} leaked response${s.leakedResponses === 1 ? '' : 's'}, ` +
    `${s.leakedConnections} leaked connection${s.leakedConnections === 1 ? '' : 's'}` +
    (s.resolved > 0 ? `, ${s.resolved} resolved` : '');
  const ok = s.leakedResponses === 0 && s.leakedConnections === 0;
  const lines = [ok ? paint(32, head) : paint(31, head)];
  if (report.leakedResponses.length > 0) {
    lines.push('', paint(1, 'Leaked responses'));
    for (const r of report.leakedResponses) lines.push(indent(describeLeakedResponse(r, paint), '  '));
  }
  if (report.leakedConnections.length > 0) {
    lines.push('', paint(1, 'Leaked connections'));
    for (const c of report.leakedConnections) lines.push(indent(describeLeakedConnection(c, paint), '  '));
  }
  const hidden = s.leakedResponses + s.leakedConnections - report.leakedResponses.length - report.leakedConnections.length;
  if (hidden > 0) lines.push('', `(${hidden} more leaks counted but not kept in detail; raise LEAKWATCH_MAX_REPORTED_LEAKS)`);
  return lines.join('\n');
}
