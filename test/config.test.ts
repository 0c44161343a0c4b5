import { describe, expect, it } from 'vitest';
import { ConfigError, parseDuration, resolveConfig, unknownEnvironment } from '../src/config.js';

describe('parseDuration', () => {
  it.each([
    [1000, 1000],
    ['1000', 1000],
    ['500ms', 500],
    ['2s', 2000],
    ['1.5m', 90_000],
    ['1h', 3_600_000],
    [' 3s ', 3000],
  ])('reads %j as %d ms', (input, ms) => {
    expect(parseDuration(input, 'x')).toBe(ms);
  });

  it.each(['', 'soon', '-1s', '0', '5 minutes', '1e3', 'NaN', 0, -5, Infinity])('rejects %j with a sentence naming the option', (input) => {
    expect(() => parseDuration(input, '--response-threshold')).toThrow(ConfigError);
    expect(() => parseDuration(input, '--response-threshold')).toThrow(/--response-threshold .*(duration).*500ms, 2s, 1m/);
  });
});

describe('resolveConfig', () => {
  it('uses the documented defaults with nothing set: 30 s, 10 s, attribution on, 10 frames, 1000 leaks kept', () => {
    expect(resolveConfig({}, {})).toMatchObject({
      responseThresholdMs: 30_000,
      connectionThresholdMs: 10_000,
      endAttribution: true,
      acquireStackFrames: 10,
      maxReportedLeaks: 1000,
      metricsPort: null,
      metricsHost: '127.0.0.1',
    });
  });

  it('reads LEAKWATCH_* and lets explicit options win', () => {
    const env = { LEAKWATCH_RESPONSE_THRESHOLD: '2s', LEAKWATCH_END_ATTRIBUTION: 'off', LEAKWATCH_METRICS_PORT: '9464', LEAKWATCH_CONNECTION_THRESHOLD: '1s' };
    expect(resolveConfig({ connectionThreshold: 500 }, env)).toMatchObject({
      responseThresholdMs: 2000,
      connectionThresholdMs: 500,
      endAttribution: false,
      metricsPort: 9464,
    });
  });

  it.each([
    [{ LEAKWATCH_END_ATTRIBUTION: 'maybe' }, /LEAKWATCH_END_ATTRIBUTION is "maybe"; use true or false/],
    [{ LEAKWATCH_ACQUIRE_STACK_FRAMES: '-1' }, /LEAKWATCH_ACQUIRE_STACK_FRAMES is "-1"; use a whole number from 0 to 100/],
    [{ LEAKWATCH_METRICS_PORT: '70000' }, /LEAKWATCH_METRICS_PORT is "70000"; use a whole number from 0 to 65535/],
    [{ LEAKWATCH_METRICS_HOST: '  ' }, /LEAKWATCH_METRICS_HOST is " {2}"; use a host name or IP address/],
    [{ LEAKWATCH_RESPONSE_THRESHOLD: 'fast' }, /LEAKWATCH_RESPONSE_THRESHOLD is "fast", which is not a duration/],
  ])('rejects %j with a sentence that names it', (env, message) => {
    expect(() => resolveConfig({}, env)).toThrow(message);
  });

  it('reads the leak log format and the report file from LEAKWATCH_LOG and LEAKWATCH_REPORT, or their options', () => {
    expect(resolveConfig({}, {})).toMatchObject({ leakLog: 'text', report: null, reportDir: null });
    expect(resolveConfig({}, { LEAKWATCH_LOG: 'JSON', LEAKWATCH_REPORT: 'r.json', LEAKWATCH_REPORT_DIR: '/tmp/parts' })).toMatchObject({
      leakLog: 'json',
      report: 'r.json',
      reportDir: '/tmp/parts',
    });
    expect(resolveConfig({ leakLog: 'off', report: 'mine.json' }, { LEAKWATCH_LOG: 'json', LEAKWATCH_REPORT: 'r.json' })).toMatchObject({ leakLog: 'off', report: 'mine.json' });
    expect(() => resolveConfig({}, { LEAKWATCH_LOG: 'yaml' })).toThrow('LEAKWATCH_LOG is "yaml"; use text, json or off.');
    expect(() => resolveConfig({ report: '' }, {})).toThrow(/option report is ""; use the path of the JSON file/);
  });

  it.each([
    ['responseTreshold', 'option responseTreshold is not a leakwatch option; did you mean responseThreshold?'],
    ['ResponseThreshold', 'option ResponseThreshold is not a leakwatch option; did you mean responseThreshold?'],
    ['connectionTimeout', 'option connectionTimeout is not a leakwatch option; did you mean connectionThreshold?'],
    ['logLeaks', 'option logLeaks is not a leakwatch option; did you mean leakLog?'],
    ['port', 'option port is not a leakwatch option; the options are responseThreshold, connectionThreshold, endAttribution, acquireStackFrames, maxReportedLeaks, exhaustionThreshold, holdersSignal, metricsPort, metricsHost, leakLog, report, log.'],
  ])('rejects the unknown option %s, naming the nearest known one', (name, message) => {
    expect(() => resolveConfig({ [name]: 1 } as never, {})).toThrow(message);
  });

  it('reads the exhaustion threshold (1 s by default) from exhaustionThreshold or LEAKWATCH_EXHAUSTION_THRESHOLD', () => {
    expect(resolveConfig({}, {})).toMatchObject({ exhaustionThresholdMs: 1000 });
    expect(resolveConfig({}, { LEAKWATCH_EXHAUSTION_THRESHOLD: '250ms' })).toMatchObject({ exhaustionThresholdMs: 250 });
    expect(resolveConfig({ exhaustionThreshold: '2s' }, { LEAKWATCH_EXHAUSTION_THRESHOLD: '250ms' })).toMatchObject({ exhaustionThresholdMs: 2000 });
    expect(() => resolveConfig({ exhaustionThreshold: 'soon' }, {})).toThrow(/option exhaustionThreshold is "soon", which is not a duration/);
  });

  describe('when holdersSignal is given', () => {
    it('is off unless asked for, since a listener changes what the signal does', () => {
      expect(resolveConfig({}, {})).toMatchObject({ holdersSignal: null });
    });

    it.each([
      [true, 'SIGUSR2'],
      ['SIGUSR2', 'SIGUSR2'],
      ['usr2', 'SIGUSR2'],
      ['on', 'SIGUSR2'],
      ['SIGQUIT', 'SIGQUIT'],
      ['off', null],
      [false, null],
    ])('reads %j as %j', (value, signal) => {
      expect(resolveConfig({ holdersSignal: value as never }, {}).holdersSignal).toBe(signal);
      expect(resolveConfig({}, { LEAKWATCH_HOLDERS_SIGNAL: String(value) }).holdersSignal).toBe(signal);
    });

    it.each(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGKILL', 'loud'])('rejects %s with a sentence naming the option and what is allowed', (value) => {
      expect(() => resolveConfig({ holdersSignal: value as never }, {})).toThrow(ConfigError);
      expect(() => resolveConfig({}, { LEAKWATCH_HOLDERS_SIGNAL: value })).toThrow(
        new RegExp(`^LEAKWATCH_HOLDERS_SIGNAL is "${value}"; use SIGUSR2, SIGQUIT \\(true means SIGUSR2\\) or off`),
      );
    });
  });

  it('rejects a log option that is not a function', () => {
    expect(() => resolveConfig({ log: 'stderr' as never }, {})).toThrow(/option log must be a function/);
  });
});

describe('unknownEnvironment', () => {
  it('names each LEAKWATCH_ variable nothing reads, with the nearest known one when it is close', () => {
    const env = {
      LEAKWATCH_RESPONSE_TRESHOLD: '5s',
      LEAKWATCH_LOGS: 'json',
      LEAKWATCH_ZZZ: '1',
      LEAKWATCH_REPORT: 'r.json',
      LEAKWATCH_REPORT_DIR: '/tmp',
      LEAKWATCH_TEST_PG_URL: 'postgres://x',
      LEAKWATCH_METRICS_LAZY: '1',
      OTHER: '1',
    };
    expect(unknownEnvironment(env)).toEqual([
      { name: 'LEAKWATCH_RESPONSE_TRESHOLD', nearest: 'LEAKWATCH_RESPONSE_THRESHOLD' },
      { name: 'LEAKWATCH_LOGS', nearest: 'LEAKWATCH_LOG' },
      { name: 'LEAKWATCH_ZZZ', nearest: undefined },
    ]);
  });
});

describe('text report colour', () => {
  it('is used only for a terminal, never with NO_COLOR, and FORCE_COLOR forces it', async () => {
    const { useColour, formatReport } = await import('../src/report/text.js');
    expect(useColour({ isTTY: true }, {})).toBe(true);
    expect(useColour({ isTTY: false }, {})).toBe(false);
    expect(useColour({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColour({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    const report = {
      summary: { responses: 1, aborted: 0, leakedResponses: 0, leakedConnections: 0, resolved: 0 },
      leakedResponses: [],
      leakedConnections: [],
    } as never;
    expect(formatReport(report, { colour: true })).toContain('\x1b[32m');
    expect(formatReport(report, { colour: false })).not.toContain('\x1b[');
  });
});
