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
  /** Serve Prometheus metrics on this port (0 picks a free one). @default off */
  metricsPort?: number | string;
  /** Address the metrics server binds. @default '127.0.0.1' */
  metricsHost?: string;
  /** Where internal failures are logged. @default a function that writes one line to stderr */
  log?: (message: string) => void;
}

export interface Config {
  /** The explicit options this was resolved from (the environment fills in the rest). */
  readonly options: Readonly<LeakwatchOptions>;
  responseThresholdMs: number;
  connectionThresholdMs: number;
  endAttribution: boolean;
  acquireStackFrames: number;
  maxReportedLeaks: number;
  metricsPort: number | null;
  metricsHost: string;
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
  metricsHost: '127.0.0.1',
});

/** The environment variable behind each option, for messages and docs. */
export const ENV = Object.freeze({
  responseThreshold: 'LEAKWATCH_RESPONSE_THRESHOLD',
  connectionThreshold: 'LEAKWATCH_CONNECTION_THRESHOLD',
  endAttribution: 'LEAKWATCH_END_ATTRIBUTION',
  acquireStackFrames: 'LEAKWATCH_ACQUIRE_STACK_FRAMES',
  maxReportedLeaks: 'LEAKWATCH_MAX_REPORTED_LEAKS',
  metricsPort: 'LEAKWATCH_METRICS_PORT',
  metricsHost: 'LEAKWATCH_METRICS_HOST',
});

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

export function defaultLog(message: string): void {
  process.stderr.write(`[leakwatch] ${message}\n`);
}

/**
 * Merges explicit options over `LEAKWATCH_*` environment variables over defaults, and validates
 * the result. An explicit option wins over the environment.
 */
export function resolveConfig(options: LeakwatchOptions = {}, env: NodeJS.ProcessEnv = process.env): Config {
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
  const mp = pick('metricsPort');
  const mh = pick('metricsHost');
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
    metricsPort: mp ? parseCount(mp.value, mp.what, 0, 65535) : null,
    metricsHost: mh ? (mh.value as string).trim() : DEFAULTS.metricsHost,
    log: options.log ?? defaultLog,
  };
}
