/**
 * The clock the leak rules run on: milliseconds since the epoch as of the process's start,
 * advanced by the monotonic clock since (`performance.now()`), never by the wall clock.
 *
 * A rule measures how long something has lasted. On the wall clock (`Date.now()`) a step made by
 * NTP, an operator or a resumed VM would read as time that passed: one hour forward, and every
 * open response that had not written for a threshold's time at the step would be reported leaked
 * at the next check; one hour back, and no leak would be found for an hour. The monotonic clock
 * only moves forward, at the rate time passes.
 *
 * What a person or another tool reads as a date (a report's timestamps, the oldest open response's
 * start in metrics) is turned back into wall-clock time when it is written: {@link wallOffset}
 * says what to add to a stamp of this clock, so a stamp reads as the wall-clock time it happened
 * at, steps included.
 */

const origin = performance.timeOrigin;
/** Bound once: `performance.now()` checks its receiver on every call, which costs as much as the read. */
const monotonic = performance.now.bind(performance);

/** Whole milliseconds, as `Date.now()` gives, on the monotonic clock. */
export function steadyNow(): number {
  return Math.floor(origin + monotonic());
}

/** The offset last taken: it moves only with a step of the wall clock, not with a read's rounding. */
let offset = 0;

/** What to add to a {@link steadyNow} stamp for the wall-clock time it was taken at (0 until the wall clock is stepped). */
export function wallOffset(): number {
  // Two clocks read in whole milliseconds part by one now and then; that is rounding, not a step.
  const now = Date.now() - steadyNow();
  if (now > offset + 1 || now < offset - 1) offset = now;
  return offset;
}
