import { describe, expect, it } from 'vitest';
import type { StackCapture } from '../../src/core/records.js';
import { SitesByCode } from '../../src/core/sites.js';
import { captureStack, siteOf } from '../../src/core/stack.js';

/** A setter as end-attribution's: the site is the line that assigns, one frame below `assign`. */
function harness() {
  let captures = 0;
  const sites = new SitesByCode(() => {
    captures++;
    return captureStack(1, assign);
  });
  function assign(fn: unknown): StackCapture | null {
    return sites.siteFor(fn);
  }
  return { assign, captures: () => captures };
}

const closure = (n: number) =>
  function end(this: unknown) {
    return n;
  };
const LINE = /sites\.test\.ts:(\d+):\d+$/;
const lineOf = (capture: StackCapture | null) => Number(LINE.exec(siteOf(capture))?.[1]);

describe('SitesByCode', () => {
  it('captures the site of a closure once, and gives it for every later closure of the same code assigned there', () => {
    const { assign, captures } = harness();
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) seen.add(lineOf(assign(closure(i))));
    expect(seen.size).toBe(1);
    expect([...seen][0]).toBeGreaterThan(0);
    // The first capture, then the checks on the 2nd, 4th, … 64th use.
    expect(captures()).toBe(1 + 6);
  });

  it('finds the same code assigned from two lines at its next check, and captures that code every time from then on', () => {
    const { assign, captures } = harness();
    const fromA = (fn: unknown) => assign(fn); // one line
    const fromB = (fn: unknown) => assign(fn); // another line
    const lineA = lineOf(fromA(closure(1)));
    const lineB = lineOf(fromB(closure(2))); // the 2nd use is checked: a different site
    expect(lineB).not.toBe(lineA);
    expect(lineOf(fromA(closure(3)))).toBe(lineA);
    const before = captures();
    for (let i = 0; i < 10; i++) expect(lineOf(fromB(closure(i)))).toBe(lineB);
    expect(captures() - before).toBe(10);
  });

  it('captures every time for functions with no source of their own (bound, builtins) and for what is not a function', () => {
    const { assign, captures } = harness();
    const target = closure(0);
    for (let i = 0; i < 5; i++) assign(target.bind(null));
    assign(Math.max);
    assign(new Proxy(closure(1), {}));
    assign(undefined);
    expect(captures()).toBe(8);
  });

  it('tells apart closures of different code of the same length', () => {
    const { assign } = harness();
    const a = lineOf(assign(function x() { return 1; })); // prettier-ignore
    const b = lineOf(assign(function y() { return 2; })); // prettier-ignore
    expect(a).toBeGreaterThan(0);
    expect(b).toBe(a + 1);
  });

  it('keeps a string, not the captured frames (which hold the objects on the stack)', () => {
    const { assign } = harness();
    const site = assign(closure(0));
    expect(Object.getOwnPropertyDescriptor(site, 'stack')).toMatchObject({ value: expect.stringContaining('sites.test.ts') });
  });
});
