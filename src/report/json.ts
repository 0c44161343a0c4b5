import type { Ledger } from '../core/ledger.js';
import { loadedLibraries } from '../core/module-hooks.js';
import { ConnectionRecord, ResponseRecord, type ClosedHow, type ConnectionKind, type EndOverride, type ServerState } from '../core/records.js';
import { appSiteOf, formatStack } from '../core/stack.js';
import { withoutCredentials } from '../core/credentials.js';
import { VERSION } from '../version.js';

/** The JSON report, `schemaVersion: 1`; schema/report.schema.json is its JSON Schema. */
export interface Report {
  schemaVersion: 1;
  tool: { name: 'leakwatch'; version: string };
  startedAt: string;
  endedAt: string;
  thresholds: { responseMs: number; connectionMs: number };
  summary: {
    responses: number;
    aborted: number;
    leakedResponses: number;
    leakedConnections: number;
    resolved: number;
    /**
     * Connections leakwatch followed, by kind (each pg checkout or client connect, each Redis
     * connection or pool lease): 0 says it saw none, which is not the same as none leaking.
     */
    connections: Record<ConnectionKind, number>;
  };
  leakedResponses: LeakedResponse[];
  leakedConnections: LeakedConnection[];
  /** Leaks that stopped being leaks before the report (finished late, released late). */
  resolved: ResolvedLeak[];
  /** Processes whose parts were merged into this report. */
  processes: ReportProcess[];
}

/** One process of a report. */
export interface ReportProcess {
  pid: number;
  argv: string[];
  /** The libraries leakwatch follows that the process loaded (`pg`, `ioredis`, `redis`); absent from reports of leakwatch 0.1.0. */
  libraries?: string[];
  /**
   * Set by `leakwatch run` for a process that announced itself but whose part is not in the report:
   * it `exited` without writing it (killed by SIGKILL, say), or was `still-running` when run stopped
   * waiting for it.
   */
  reportMissing?: 'exited' | 'still-running';
}

export interface LeakedResponse {
  id: string;
  method: string;
  path: string;
  route: string | null;
  reason: 'unclosed' | 'open-at-exit';
  startedAt: string;
  ageMs: number;
  endOverrides: EndOverride[];
  connections: string[];
  /** Commands the response still waits for on connections it does not own (a shared Redis client). */
  pendingCommands: Array<{ command: string; connection: string; ageMs: number }>;
  /** What happened when, oldest first; absent from reports of leakwatch 0.1.0. */
  events?: TimelineEvent[];
  /** Older events left out of `events` (a history keeps a fixed number); absent when none. */
  eventsDropped?: number;
}

/** Events of a response's timeline. `wrote` and `waited` are what a threshold check saw it do since the last one. */
export type ResponseEvent = 'started' | 'wrote' | 'waited' | 'leaked' | 'finished' | 'aborted';
/** Events of a connection's timeline: its checkout, each state it entered, the server's answer, its release. */
export type ConnectionEvent = 'acquired' | 'busy' | 'idle' | 'idle-in-transaction' | 'idle-in-transaction-aborted' | 'subscriber' | 'closed' | 'confirmed' | 'leaked' | 'released';

/** One moment of a timeline. */
export interface TimelineEvent {
  at: string;
  event: ResponseEvent | ConnectionEvent;
  /** For `wrote`: bytes written since the previous check. */
  bytes?: number;
}

export interface LeakedConnection {
  id: string;
  kind: 'pg' | 'redis';
  pool: string;
  state: string;
  reason: 'held-by-leaked-response' | 'held-after-response-closed' | 'idle-past-threshold';
  heldMs: number;
  /** How long it has been in its state: idle since its last answer, or closed since its socket went. */
  idleMs: number;
  /** How its socket went away, when `state` is `closed`; else null. */
  closed: { how: ClosedHow; code: string | null } | null;
  owner: string | null;
  /** The owning request's method; absent from reports of leakwatch 0.1.0. */
  ownerMethod?: string | null;
  ownerPath: string | null;
  ownerRoute: string | null;
  ownerState: 'open' | 'closed' | null;
  /** How the owner closed: `aborted` is a close without finishing (the client went away). */
  ownerOutcome: 'finished' | 'aborted' | null;
  /** For an owner that closed without finishing: its `res.end` replacements, whether each was called and called through. */
  ownerEndOverrides: EndOverride[];
  /** The stack where it was acquired (library frames included, leakwatch's own left out). */
  acquiredAt: string | null;
  /** `file:line:column` of the first frame of that stack in the app's own code; null when none was captured. */
  acquisitionSite: string | null;
  server: ServerState | null;
  /** What happened to the connection when, oldest first; absent from reports of leakwatch 0.1.0. */
  events?: TimelineEvent[];
  eventsDropped?: number;
  /** The owning response's events (its start, checks, close); absent without an owner. */
  ownerEvents?: TimelineEvent[];
}

export interface ResolvedLeak {
  id: string;
  kind: 'response' | 'pg' | 'redis';
  reason: string;
  /** Method and path for a response, pool for a connection. */
  what: string;
  detectedAt: string;
  resolvedAt: string;
  /** The route template of the response, or of the connection's owner; absent from reports of leakwatch 0.1.0. */
  route?: string | null;
  events?: TimelineEvent[];
  eventsDropped?: number;
  ownerEvents?: TimelineEvent[];
}



const iso = (ms: number) => new Date(ms).toISOString();

/** Formats a time of the ledger's clock as the wall-clock date it stands for. */
type Dates = (ms: number) => string;
/** `offset`: Ledger.wallOffset(), taken once per report so that its dates agree with its ages (core/clock.ts). */
const datesOf = (offset: number): Dates => (ms) => iso(ms + offset);

/** Events made from the record's timestamps and its history, sorted by time (ties keep this order). */
function timeline(record: ResponseRecord | ConnectionRecord, date: Dates): { events: TimelineEvent[]; eventsDropped?: number } {
  const moments: Array<{ at: number; event: TimelineEvent['event']; bytes?: number }> = [];
  const isResponse = record instanceof ResponseRecord;
  moments.push({ at: isResponse ? record.startedAt : record.acquiredAt, event: isResponse ? 'started' : 'acquired' });
  for (const { at, event, value } of record.history?.entries() ?? []) moments.push(event === 'wrote' ? { at, event, bytes: value } : { at, event });
  if (record.leak !== null) moments.push({ at: record.leak.detectedAt, event: 'leaked' });
  if (isResponse && record.closedAt !== 0) moments.push({ at: record.closedAt, event: record.outcome ?? 'finished' });
  if (!isResponse && record.releasedAt !== 0) moments.push({ at: record.releasedAt, event: 'released' });
  moments.sort((a, b) => a.at - b.at);
  const events = moments.map(({ at, event, bytes }) => (bytes === undefined ? { at: date(at), event } : { at: date(at), event, bytes }));
  const dropped = record.history?.dropped ?? 0;
  return dropped > 0 ? { events, eventsDropped: dropped } : { events };
}

/** A connection's timeline and its owner's, for reports. */
function connectionTimeline(c: ConnectionRecord, date: Dates): Pick<LeakedConnection, 'events' | 'eventsDropped' | 'ownerEvents'> {
  return c.owner === null ? timeline(c, date) : { ...timeline(c, date), ownerEvents: timeline(c.owner, date).events };
}

function describeResponse(ledger: Ledger, r: ResponseRecord, now: number, date: Dates): LeakedResponse {
  const detail = r.detail;
  const connections: string[] = [];
  for (const item of ledger.leaks) if (item instanceof ConnectionRecord && item.owner === r) connections.push(item.id);
  return {
    id: r.id,
    method: detail?.method ?? 'UNKNOWN',
    path: detail?.path ?? '',
    route: r.route,
    reason: r.leak!.reason,
    startedAt: date(r.startedAt),
    ageMs: (r.closedAt || now) - r.startedAt,
    endOverrides: detail?.endOverrides ?? [],
    connections,
    pendingCommands: [...(r.operations ?? [])].map((op) => ({ command: op.command, connection: op.connection.id, ageMs: now - op.startedAt })),
    ...timeline(r, date),
  };
}

function describeConnection(ledger: Ledger, c: ConnectionRecord, now: number, date: Dates): LeakedConnection {
  const owner = c.owner;
  const until = c.releasedAt || now;
  return {
    id: c.id,
    kind: c.kind,
    pool: c.pool,
    state: c.state,
    reason: c.leak!.reason,
    heldMs: until - c.acquiredAt,
    idleMs: c.busy > 0 ? 0 : until - c.idleSince,
    closed: c.closed === null ? null : { how: c.closed.how, code: c.closed.code },
    owner: owner?.id ?? null,
    ownerMethod: owner === null ? null : owner.method,
    ownerPath: owner === null ? null : (owner.detail?.path ?? null),
    ownerRoute: owner === null ? null : owner.route,
    ownerState: owner === null ? null : owner.closedAt === 0 ? 'open' : 'closed',
    ownerOutcome: owner?.outcome ?? null,
    // The root cause of a stranded connection whose owner was aborted: an `end` that never reached Node's.
    ownerEndOverrides: owner !== null && owner.outcome === 'aborted' ? (owner.detail?.endOverrides ?? []) : [],
    acquiredAt: formatStack(c.stack),
    acquisitionSite: appSiteOf(c.stack),
    server: c.server,
    ...connectionTimeline(c, date),
  };
}

/**
 * The report of this process's ledger now; `startedAt` and `now` are times of the ledger's clock,
 * written as the wall-clock dates they stand for (see core/clock.ts). The owner of a connection is
 * described even when the owner itself did not leak (a closed response), so `ownerPath` is filled
 * from its detail or, for a response that never leaked, left null.
 */
export function buildReport(
  ledger: Ledger,
  startedAt: number,
  now = ledger.now(),
  include: (item: ResponseRecord | ConnectionRecord) => boolean = () => true,
): Report {
  const leakedResponses: LeakedResponse[] = [];
  const leakedConnections: LeakedConnection[] = [];
  const resolved: ResolvedLeak[] = [];
  const date = datesOf(ledger.wallOffset());
  for (const item of ledger.leaks) {
    if (!include(item)) continue;
    const leak = item.leak!;
    if (leak.resolvedAt !== 0) {
      resolved.push({
        id: item.id,
        kind: item instanceof ResponseRecord ? 'response' : item.kind,
        reason: leak.reason,
        what: item instanceof ResponseRecord ? `${item.detail?.method ?? ''} ${item.detail?.path ?? ''}`.trim() : item.pool,
        detectedAt: date(leak.detectedAt),
        resolvedAt: date(leak.resolvedAt),
        route: item instanceof ResponseRecord ? item.route : (item.owner?.route ?? null),
        ...(item instanceof ResponseRecord ? timeline(item, date) : connectionTimeline(item, date)),
      });
    } else if (item instanceof ResponseRecord) {
      leakedResponses.push(describeResponse(ledger, item, now, date));
    } else {
      leakedConnections.push(describeConnection(ledger, item, now, date));
    }
  }
  const t = ledger.totals;
  return {
    schemaVersion: 1,
    tool: { name: 'leakwatch', version: VERSION },
    startedAt: date(startedAt),
    endedAt: date(now),
    thresholds: { responseMs: ledger.responseThresholdMs, connectionMs: ledger.connectionThresholdMs },
    summary: {
      responses: t.responses + ledger.openResponses,
      aborted: t.aborted,
      leakedResponses: t.leakedResponses,
      leakedConnections: t.leakedConnections,
      resolved: t.resolved,
      connections: { ...t.connections },
    },
    leakedResponses,
    leakedConnections,
    resolved,
    processes: [{ pid: process.pid, argv: process.argv.slice(1).map(withoutCredentials), libraries: loadedLibraries() }],
  };
}

/** One report from the parts several processes wrote; thresholds come from the first. */
export function mergeReports(parts: Report[], fallback: { startedAt: number; endedAt: number; responseMs: number; connectionMs: number }): Report {
  const merged: Report = {
    schemaVersion: 1,
    tool: { name: 'leakwatch', version: VERSION },
    startedAt: iso(fallback.startedAt),
    endedAt: iso(fallback.endedAt),
    thresholds: parts[0]?.thresholds ?? { responseMs: fallback.responseMs, connectionMs: fallback.connectionMs },
    summary: { responses: 0, aborted: 0, leakedResponses: 0, leakedConnections: 0, resolved: 0, connections: { pg: 0, redis: 0 } },
    leakedResponses: [],
    leakedConnections: [],
    resolved: [],
    processes: [],
  };
  const { summary } = merged;
  for (const part of parts) {
    summary.responses += part.summary.responses;
    summary.aborted += part.summary.aborted;
    summary.leakedResponses += part.summary.leakedResponses;
    summary.leakedConnections += part.summary.leakedConnections;
    summary.resolved += part.summary.resolved;
    for (const kind of Object.keys(summary.connections) as ConnectionKind[]) summary.connections[kind] += part.summary.connections?.[kind] ?? 0;
    merged.leakedResponses.push(...part.leakedResponses);
    merged.leakedConnections.push(...part.leakedConnections);
    merged.resolved.push(...part.resolved);
    merged.processes.push(...part.processes);
  }
  return merged;
}
