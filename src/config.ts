/**
 * Options, defaults, `LEAKWATCH_*` environment variables and their validation.
 *
 * Misconfiguration throws a {@link ConfigError} at start-up whose message names the option, the
 * value and what is accepted; nothing here runs on the hot path.
 */

/** Options accepted by `start()` and, as environment variables, by `leakwatch/register`. */
export interface LeakwatchOptions {
  /**
   * How long a response may go without finishing, writing a byte or waiting on a busy connection
   * before it is reported as leaked (`unclosed`). Milliseconds or a duration string (`30s`).
   * @default 30000
   */
  responseThreshold?: number | string;
  /**
   * How long a connection may stay held and idle after its owning response closed (or, for a pool
   * checkout with no owning response, idle at all) before it is reported as leaked.
   * @default 10000
   */
  connectionThreshold?: number | string;
  /**
   * Record where `res.end` is replaced during a request, and whether each replacement was called
   * and called through. Costs nothing until some code assigns `res.end`.
   * @default true
   */
  endAttribution?: boolean;
  /**
   * Stack frames captured where a connection is acquired; 0 turns capture off.
   * @default 10
   */
  acquireStackFrames?: number;
  /** Leaked items kept with full detail; later ones are still counted. @default 1000 */
  maxReportedLeaks?: number;
  /**
   * How long a pool may have checkouts waiting for a connection, with none idle, before it is
   * exhausted: one log line with the connections' holders (at most one a minute per pool while it
   * lasts) and `leakwatch_db_client_pool_exhaustions_total`. Milliseconds or a duration string.
   * @default 1000
   */
  exhaustionThreshold?: number | string;
  /**
   * A signal on which the process writes who holds every pool connection now, and who waits (the
   * holders snapshot), to `log`: `SIGUSR2` (or `true`), `SIGQUIT`, or `off`. Off by default: a
   * listener changes what the signal does (Node's default for both is to end the process, and
   * nodemon restarts an app by sending it SIGUSR2).
   * @default 'off'
   */
  holdersSignal?: HoldersSignal | boolean;
  /** Serve Prometheus metrics on this port (0 picks a free one). @default off */
  metricsPort?: number | string;
  /** Address the metrics server binds. @default '127.0.0.1' */
  metricsHost?: string;
  /**
   * One line per leak found and per leak resolved, rate-limited: `text`, `json` (one object per
   * line, for log pipelines) or `off`. Lines go to `log`.
   * @default 'text'
   */
  leakLog?: LeakLogFormat;
  /** Write this process's JSON report to this file when it exits. @default off */
  report?: string;
  /**
   * Where leak lines and internal failures are written, one line per call.
   * @default a function that writes the line to stderr
   */
  log?: (message: string) => void;
}

export type LeakLogFormat = 'text' | 'json' | 'off';

/**
 * The signals `holdersSignal` may name. Not SIGINT, SIGTERM or SIGHUP (a listener would keep them
 * from ending the process, and `leakwatch run` stops its command with them), nor SIGUSR1 (Node's
 * inspector), nor SIGWINCH (sent at every terminal resize).
 */
export const HOLDERS_SIGNALS: ReadonlyArray<Exclude<HoldersSignal, 'off'>> = Object.freeze(['SIGUSR2', 'SIGQUIT'] as const);
/** What `holdersSignal` may be: a signal that writes the holders snapshot, or `off`. */
export type HoldersSignal = 'SIGUSR2' | 'SIGQUIT' | 'off';

export interface Config {
  /** The explicit options this was resolved from (the environment fills in the rest). */
  readonly options: Readonly<LeakwatchOptions>;
  responseThresholdMs: number;
  connectionThresholdMs: number;
  endAttribution: boolean;
  acquireStackFrames: number;
  maxReportedLeaks: number;
  exhaustionThresholdMs: number;
  /** The signal that writes the holders snapshot; null when off. */
  holdersSignal: Exclude<HoldersSignal, 'off'> | null;
  metricsPort: number | null;
  metricsHost: string;
  leakLog: LeakLogFormat;
  /** File for this process's report at exit (`report`, `LEAKWATCH_REPORT`); null for none. */
  report: string | null;
  /** Folder for `<pid>.json` at exit, set by `leakwatch run` (`LEAKWATCH_REPORT_DIR`); null for none. */
  reportDir: string | null;
  log: (message: string) => void;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULTS = Object.freeze({
  responseThresholdMs: 30_000,
  connectionThresholdMs: 10_000,
  endAttribution: true,
  acquireStackFrames: 10,
  maxReportedLeaks: 1000,
  exhaustionThresholdMs: 1000,
  metricsHost: '127.0.0.1',
  leakLog: 'text' as LeakLogFormat,
});

/** The environment variable behind each option, for messages and docs. */
export const ENV = Object.freeze({
  responseThreshold: 'LEAKWATCH_RESPONSE_THRESHOLD',
  connectionThreshold: 'LEAKWATCH_CONNECTION_THRESHOLD',
  endAttribution: 'LEAKWATCH_END_ATTRIBUTION',
  acquireStackFrames: 'LEAKWATCH_ACQUIRE_STACK_FRAMES',
  maxReportedLeaks: 'LEAKWATCH_MAX_REPORTED_LEAKS',
  exhaustionThreshold: 'LEAKWATCH_EXHAUSTION_THRESHOLD',
  holdersSignal: 'LEAKWATCH_HOLDERS_SIGNAL',
  metricsPort: 'LEAKWATCH_METRICS_PORT',
  metricsHost: 'LEAKWATCH_METRICS_HOST',
  leakLog: 'LEAKWATCH_LOG',
  report: 'LEAKWATCH_REPORT',
});

/** Every option `start()` accepts; any other is a ConfigError. */
export const OPTION_NAMES: readonly string[] = Object.freeze([...Object.keys(ENV), 'log']);

/**
 * Every `LEAKWATCH_*` variable something in leakwatch reads: the options', and those set by
 * `leakwatch run` for the processes it starts, and the test suite's and the demo's services.
 */
export const ENVIRONMENT_NAMES: readonly string[] = Object.freeze([
  ...Object.values(ENV),
  'LEAKWATCH_REPORT_DIR',
  'LEAKWATCH_METRICS_LAZY',
  'LEAKWATCH_TEST_PG_URL',
  'LEAKWATCH_TEST_REDIS_URL',
  'LEAKWATCH_DEMO_PG_URL',
  'LEAKWATCH_DEMO_REDIS_URL',
]);

const LEAK_LOG_FORMATS: readonly LeakLogFormat[] = ['text', 'json', 'off'];

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_HINT = 'use milliseconds (1000) or a number with ms, s, m or h (500ms, 2s, 1m)';

/** Parses `1000`, `500ms`, `2s`, `1.5m`, `1h` into milliseconds; `what` names the option in errors. */
export function parseDuration(value: unknown, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > 0) return value;
    throw new ConfigError(`${what} must be a positive duration, not ${value}; ${DURATION_HINT}.`);
  }
  if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (match) {
      const ms = Number(match[1]) * UNIT_MS[match[2] ?? 'ms'];
      if (ms > 0) return ms;
    }
  }
  throw new ConfigError(`${what} is ${JSON.stringify(value)}, which is not a duration; ${DURATION_HINT}.`);
}

function parseBoolean(value: unknown, what: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
  }
  throw new ConfigError(`${what} is ${JSON.stringify(value)}; use true or false (also 1/0, yes/no, on/off).`);
}

function parseCount(value: unknown, what: string, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return n;
  throw new ConfigError(`${what} is ${JSON.stringify(value)}; use a whole number from ${min} to ${max}.`);
}

/** Edit distance where swapping two neighbours counts once (`treshold`/`threshold` is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The words of a camelCase or SNAKE_CASE name, lower case and sorted: `logLeaks` and `leakLog` differ by one letter. */
function sortedWords(name: string): string {
  return name
    .split(/_|(?=[A-Z][a-z])/)
    .map((word) => word.toLowerCase())
    .sort()
    .join('');
}

const firstWord = (name: string) => name.split(/_|(?=[A-Z][a-z])/)[0].toLowerCase();

/**
 * The known name `name` was probably meant to be: the closest by edit distance (case aside, or with
 * its words in another order) if close enough to be a slip; else the only one that starts with the
 * same word (`connectionTimeout` → `connectionThreshold`); else undefined.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = Math.min(editDistance(name.toLowerCase(), candidate.toLowerCase()), editDistance(sortedWords(name), sortedWords(candidate)));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (bestDistance <= Math.max(1, Math.floor(name.length / 3))) return best;
  const word = firstWord(name);
  const sameStart = word.length >= 4 ? known.filter((candidate) => firstWord(candidate) === word) : [];
  return sameStart.length === 1 ? sameStart[0] : undefined;
}

const PREFIX = 'LEAKWATCH_';

/** `LEAKWATCH_*` variables in `env` that nothing reads, each with the nearest known name if one is close. */
export function unknownEnvironment(env: NodeJS.ProcessEnv = process.env): Array<{ name: string; nearest: string | undefined }> {
  return Object.keys(env)
    .filter((name) => name.startsWith(PREFIX) && !ENVIRONMENT_NAMES.includes(name))
    .map((name) => {
      // Compared without the common prefix, which would make every short name look close.
      const nearest = nearestName(name.slice(PREFIX.length), ENVIRONMENT_NAMES.map((known) => known.slice(PREFIX.length)));
      return { name, nearest: nearest === undefined ? undefined : PREFIX + nearest };
    });
}

function checkOptionNames(options: object): void {
  for (const name of Object.keys(options)) {
    if (OPTION_NAMES.includes(name)) continue;
    const nearest = nearestName(name, OPTION_NAMES);
    throw new ConfigError(
      `option ${name} is not a leakwatch option; ` +
        (nearest !== undefined ? `did you mean ${nearest}?` : `the options are ${OPTION_NAMES.join(', ')}.`),
    );
  }
}

function parseLeakLog(value: unknown, what: string): LeakLogFormat {
  const format = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (LEAK_LOG_FORMATS.includes(format as LeakLogFormat)) return format as LeakLogFormat;
  throw new ConfigError(`${what} is ${JSON.stringify(value)}; use text, json or off.`);
}

function parseHoldersSignal(value: unknown, what: string): Exclude<HoldersSignal, 'off'> | null {
  if (value === true) return 'SIGUSR2';
  if (value === false) return null;
  if (typeof value === 'string') {
    const name = value.trim().toUpperCase();
    if (['OFF', 'FALSE', '0', 'NO'].includes(name)) return null;
    if (['ON', 'TRUE', '1', 'YES'].includes(name)) return 'SIGUSR2';
    const signal = name.startsWith('SIG') ? name : `SIG${name}`;
    if ((HOLDERS_SIGNALS as readonly string[]).includes(signal)) return signal as Exclude<HoldersSignal, 'off'>;
  }
  throw new ConfigError(
    `${what} is ${JSON.stringify(value)}; use ${HOLDERS_SIGNALS.join(', ')} (true means SIGUSR2) or off. ` +
      'SIGINT, SIGTERM and SIGHUP are not allowed (a listener would keep them from ending the process), nor SIGUSR1 (the inspector).',
  );
}

function parseFile(value: unknown, what: string): string {
  if (typeof value === 'string' && value.trim() !== '') return value;
  throw new ConfigError(`${what} is ${JSON.stringify(value)}; use the path of the JSON file to write the report to.`);
}

export function defaultLog(message: string): void {
  process.stderr.write(`[leakwatch] ${message}\n`);
}

// Marked rather than compared: another copy of leakwatch in the process has its own defaultLog.
const DEFAULT_LOG = Symbol.for('leakwatch.defaultLog.v1');
(defaultLog as unknown as Record<symbol, boolean>)[DEFAULT_LOG] = true;

/** Whether `log` is leakwatch's default (stderr, `[leakwatch] ` prefix), of this copy or another. */
export function isDefaultLog(log: unknown): boolean {
  return typeof log === 'function' && (log as unknown as Record<symbol, unknown>)[DEFAULT_LOG] === true;
}

/**
 * Merges explicit options over `LEAKWATCH_*` environment variables over defaults, and validates
 * the result. An explicit option wins over the environment.
 */
export function resolveConfig(options: LeakwatchOptions = {}, env: NodeJS.ProcessEnv = process.env): Config {
  if (options === null || typeof options !== 'object') throw new ConfigError(`start() takes an object of options, not ${options === null ? 'null' : typeof options}.`);
  checkOptionNames(options);
  const pick = (key: keyof typeof ENV): { value: unknown; what: string } | undefined => {
    if (options[key] !== undefined) return { value: options[key], what: `option ${key}` };
    const raw = env[ENV[key]];
    if (raw !== undefined && raw !== '') return { value: raw, what: ENV[key] };
    return undefined;
  };
  const rt = pick('responseThreshold');
  const ct = pick('connectionThreshold');
  const ea = pick('endAttribution');
  const sf = pick('acquireStackFrames');
  const ml = pick('maxReportedLeaks');
  const et = pick('exhaustionThreshold');
  const hs = pick('holdersSignal');
  const mp = pick('metricsPort');
  const mh = pick('metricsHost');
  const ll = pick('leakLog');
  const rp = pick('report');
  if (mh !== undefined && (typeof mh.value !== 'string' || mh.value.trim() === '')) {
    throw new ConfigError(`${mh.what} is ${JSON.stringify(mh.value)}; use a host name or IP address such as 127.0.0.1 or 0.0.0.0.`);
  }
  if (options.log !== undefined && typeof options.log !== 'function') {
    throw new ConfigError(`option log must be a function (message: string) => void, not ${typeof options.log}.`);
  }
  return {
    options: { ...options },
    responseThresholdMs: rt ? parseDuration(rt.value, rt.what) : DEFAULTS.responseThresholdMs,
    connectionThresholdMs: ct ? parseDuration(ct.value, ct.what) : DEFAULTS.connectionThresholdMs,
    endAttribution: ea ? parseBoolean(ea.value, ea.what) : DEFAULTS.endAttribution,
    acquireStackFrames: sf ? parseCount(sf.value, sf.what, 0, 100) : DEFAULTS.acquireStackFrames,
    maxReportedLeaks: ml ? parseCount(ml.value, ml.what, 1, 1_000_000) : DEFAULTS.maxReportedLeaks,
    exhaustionThresholdMs: et ? parseDuration(et.value, et.what) : DEFAULTS.exhaustionThresholdMs,
    holdersSignal: hs ? parseHoldersSignal(hs.value, hs.what) : null,
    metricsPort: mp ? parseCount(mp.value, mp.what, 0, 65535) : null,
    metricsHost: mh ? (mh.value as string).trim() : DEFAULTS.metricsHost,
    leakLog: ll ? parseLeakLog(ll.value, ll.what) : DEFAULTS.leakLog,
    report: rp ? parseFile(rp.value, rp.what) : null,
    reportDir: env.LEAKWATCH_REPORT_DIR || null,
    log: options.log ?? defaultLog,
  };
}
