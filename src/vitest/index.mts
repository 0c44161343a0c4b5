/**
 * `leakwatch/vitest`: list it in `test.setupFiles` and every test that leaves a leaked response or
 * connection behind fails, with the report of what leaked. `findLeaks()` and `expectNoLeaks()` give
 * the same check by hand.
 *
 * Responses are charged to the test during which their request started, connections to the test
 * of the response that acquired them. When a test ends the thresholds do not apply: after a short
 * settle (bounded retries with backoff, as goleak does), every response the test started must have
 * closed and every connection its requests acquired must be released or closed.
 *
 * It cannot tell tests apart when they run concurrently in one file (`test.concurrent`): their
 * requests are charged to whichever test started last.
 */
import { afterEach, beforeEach } from 'vitest';
import { steadyNow } from '../core/clock.js';
import { ConnectionRecord, ResponseRecord } from '../core/records.js';
import { getRuntime, type Runtime } from '../core/runtime.js';
import { start } from '../start.js';
import { buildReport, type LeakedConnection, type LeakedResponse } from '../report/json.js';

export type { ConnectionEvent, LeakedConnection, LeakedResponse, ResponseEvent, TimelineEvent } from '../report/json.js';
export type { ClosedHow, ConnectionKind, EndOverride, ServerState } from '../core/records.js';
import { describeLeakedConnection, describeLeakedResponse } from '../report/text.js';

export interface LeakCheckOptions {
  /** Routes (templates or paths) whose responses, and the connections they hold, are not checked. */
  ignoreRoutes?: Array<string | RegExp>;
  /** Return true to ignore a leak. */
  ignore?: (leak: Leak) => boolean;
  /** How long, at most, to let in-flight work settle before deciding. @default 1000 */
  settleMs?: number;
}

export type Leak = ({ type: 'response' } & LeakedResponse) | ({ type: 'connection' } & LeakedConnection);

export class LeakError extends Error {
  override name = 'LeakError';
  constructor(readonly leaks: Leak[]) {
    super(formatLeaks(leaks));
    // The frames would point into leakwatch; the message already says where the leak was made.
    this.stack = `${this.name}: ${this.message}`;
  }
}

const defaults: Required<Omit<LeakCheckOptions, 'ignore'>> & Pick<LeakCheckOptions, 'ignore'> = {
  ignoreRoutes: [],
  ignore: undefined,
  settleMs: 1000,
};
let auto = true;
/** On the ledger's clock, as buildReport() takes it; set once the runtime is there, and at each test's start. */
let testStartedAt = 0;
/** Leaks a caller has already been given by findLeaks(): the after-test check skips them. */
const acknowledged = new WeakSet<object>();

/** Changes the defaults for this test file; `auto: false` turns the after-each check off. */
export function configure(options: LeakCheckOptions & { auto?: boolean }): void {
  if (options.auto !== undefined) auto = options.auto;
  if (options.ignoreRoutes !== undefined) defaults.ignoreRoutes = options.ignoreRoutes;
  if (options.ignore !== undefined) defaults.ignore = options.ignore;
  if (options.settleMs !== undefined) defaults.settleMs = options.settleMs;
}

function formatLeaks(leaks: Leak[]): string {
  const lines = [`leakwatch: this test left ${leaks.length} leak${leaks.length === 1 ? '' : 's'} behind`];
  for (const leak of leaks) {
    lines.push('', leak.type === 'response' ? describeLeakedResponse(leak) : describeLeakedConnection(leak));
  }
  return lines.join('\n');
}

/** The test during which each response's request started. */
const testOf = new WeakMap<ResponseRecord, unknown>();
/** The test running now; null between tests. */
let currentTest: unknown = null;

function inScope(item: ResponseRecord | ConnectionRecord, scope: unknown): boolean {
  if (item instanceof ResponseRecord) return testOf.get(item) === scope;
  return item.owner !== null && testOf.get(item.owner) === scope;
}

function outstanding(scope: unknown): boolean {
  const ledger = runtime.ledger;
  for (const response of ledger.eachOpenResponse()) if (testOf.get(response) === scope && response.leak === null) return true;
  for (const connection of ledger.held) if (connection.leak === null && inScope(connection, scope)) return true;
  return false;
}

async function settle(scope: unknown, settleMs: number): Promise<void> {
  const until = steadyNow() + settleMs;
  let delay = 1;
  while (outstanding(scope) && steadyNow() < until) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, until - steadyNow()))));
    delay = Math.min(delay * 2, 100);
  }
}

/** Longest wait for the servers' answers about the connections found leaked (pg_stat_activity, CLIENT LIST). */
const CONFIRM_WAIT_MS = 1000;

/** Lets the servers say what they think of the connections just found leaked, boundedly. */
async function awaitConfirmations(scope: unknown, all: boolean): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (const item of runtime.ledger.leaks) {
    if (item instanceof ConnectionRecord && item.confirmation !== null && item.leak?.resolvedAt === 0 && (all || inScope(item, scope)) && !acknowledged.has(item)) {
      pending.push(item.confirmation);
    }
  }
  if (pending.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CONFIRM_WAIT_MS)));
  await Promise.race([Promise.all(pending), timeout]);
  clearTimeout(timer);
}

function routeIgnored(route: string | null, path: string | null, patterns: Array<string | RegExp>): boolean {
  return patterns.some((p) => (typeof p === 'string' ? p === route || p === path : (route !== null && p.test(route)) || (path !== null && p.test(path))));
}

/**
 * What the current test (or, outside a test, the whole process) leaked so far, after letting
 * in-flight work settle. Leaks returned here are not reported again when the test ends.
 */
export async function findLeaks(options: LeakCheckOptions = {}): Promise<Leak[]> {
  const ignoreRoutes = options.ignoreRoutes ?? defaults.ignoreRoutes;
  const ignore = options.ignore ?? defaults.ignore;
  const scope = currentTest;
  const all = scope === null;
  await settle(scope, options.settleMs ?? defaults.settleMs);
  runtime.ledger.finalize(all ? undefined : (response) => testOf.get(response) === scope);
  await awaitConfirmations(scope, all);
  const items = new Map<string, ResponseRecord | ConnectionRecord>();
  const report = buildReport(runtime.ledger, testStartedAt, undefined, (item) => {
    if ((!all && !inScope(item, scope)) || acknowledged.has(item)) return false;
    items.set(item.id, item);
    return true;
  });
  const leaks: Leak[] = [
    ...report.leakedResponses.map((r) => ({ type: 'response' as const, ...r })),
    ...report.leakedConnections.map((c) => ({ type: 'connection' as const, ...c })),
  ].filter((leak) => {
    const route = leak.type === 'response' ? leak.route : leak.ownerRoute;
    const path = leak.type === 'response' ? leak.path : leak.ownerPath;
    return !routeIgnored(route, path, ignoreRoutes) && !(ignore?.(leak) ?? false);
  });
  for (const leak of leaks) {
    const item = items.get(leak.id);
    if (item !== undefined) acknowledged.add(item);
  }
  return leaks;
}

/** Throws a LeakError naming every leak of the current test (see findLeaks). */
export async function expectNoLeaks(options: LeakCheckOptions = {}): Promise<void> {
  const leaks = await findLeaks(options);
  if (leaks.length > 0) throw new LeakError(leaks);
}

// A failing test already says what leaked; lines on stderr as well would say it twice.
start(process.env.LEAKWATCH_LOG === undefined ? { leakLog: 'off' } : undefined);
const runtime: Runtime = getRuntime()!;
testStartedAt = runtime.ledger.now();
runtime.ledger.observe({
  responseOpened(response) {
    if (currentTest !== null) testOf.set(response, currentTest);
  },
});

beforeEach((context) => {
  currentTest = context.task;
  testStartedAt = runtime.ledger.now();
});

afterEach(async (context) => {
  try {
    if (!auto || currentTest !== context.task) return;
    await expectNoLeaks();
  } finally {
    currentTest = null;
  }
});
