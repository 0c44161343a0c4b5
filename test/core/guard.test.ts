import { afterEach, describe, expect, it } from 'vitest';
import { FAILURE_LOG_EVERY, FAILURES_LOGGED_IN_FULL, logFailure, setFailureLog } from '../../src/core/guard.js';

const restore = (line: string) => process.stderr.write(`${line}\n`);
afterEach(() => setFailureLog(restore));

describe('logFailure(what, error)', () => {
  it('logs the first failures of a kind in full, then one in a thousand, so a broken hot path cannot flood the log', () => {
    const lines: string[] = [];
    setFailureLog((line) => lines.push(line));
    for (let i = 0; i < 2500; i++) logFailure('a hook on the hot path', new Error('boom'));
    expect(FAILURES_LOGGED_IN_FULL).toBe(5);
    expect(FAILURE_LOG_EVERY).toBe(1000);
    expect(lines).toHaveLength(7); // 1-5, 1000th, 2000th
    expect(lines[0]).toBe('a hook on the hot path failed (1 time), the app goes on: boom');
    expect(lines[5]).toBe('a hook on the hot path failed (1000 times), the app goes on: boom');
    expect(lines[6]).toMatch(/\(2000 times\)/);
  });

  it('counts each kind of failure apart', () => {
    const lines: string[] = [];
    setFailureLog((line) => lines.push(line));
    for (let i = 0; i < 10; i++) logFailure('kind one', 'x');
    for (let i = 0; i < 10; i++) logFailure('kind two', 'y');
    expect(lines.filter((l) => l.startsWith('kind one'))).toHaveLength(5);
    expect(lines.filter((l) => l.startsWith('kind two'))).toHaveLength(5);
  });

  it('never throws, even when the log itself does', () => {
    setFailureLog(() => {
      throw new Error('the log is broken');
    });
    expect(() => logFailure('anything', new Error('boom'))).not.toThrow();
  });
});
