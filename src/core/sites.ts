import type { StackCapture } from './records.js';

/**
 * Where a function was assigned, captured once per distinct function source instead of once per
 * assignment.
 *
 * An app replaces `res.end` on every request with a new closure of the same code (compression,
 * express-session, its own middleware), and always from the same line. Capturing that line costs
 * about 1 µs in V8 (a runtime call and a stack walk), on every request, for a site that is read
 * only when a leak is reported. Here the first assignment of a given source text captures the site
 * and formats it (so the cache keeps a string, not the frames, which hold the response); later
 * assignments of a closure with the same source text take that site for the cost of
 * `Function.prototype.toString` (a slice of the script's source) and a string comparison. Both
 * are calls into V8's C++ runtime (the slice is not a string V8 compares inline): between two
 * requests' worth of other code they cost about 0.3 and 0.2 µs (perf, realistic bench endpoint,
 * Node 24), against 0.1 µs for the pair in a hot loop. Guessing the code from its place among the
 * response's replacements (the code that came there last time) without reading it would save
 * that, but a code assigned now and then where another usually is (an error path's reporter)
 * would be guessed wrong and never captured: its leak reported without its site. So the source is
 * read on every assignment.
 *
 * The same source text can be assigned from two places (a helper's closure assigned by two
 * middlewares, two copies of one package): so the cached site is checked against a real capture
 * on the 2nd, 4th, 8th … 1024th use and every `verifyEvery`-th after (the frames' text compared as
 * V8 writes it, not mapped through source maps), and a text seen at two sites
 * is captured every time from then on. Functions whose source is not theirs (bound functions,
 * proxies, builtins: `[native code]`) are always captured.
 */
export class SitesByCode {
  /** Entries by source length: a number keys the map, and the texts of one length are compared. */
  private readonly byLength = new Map<number, SiteEntry[]>();
  /** The entry found last: an app assigns closures of one source request after request. */
  private last: SiteEntry | null = null;
  private entries = 0;

  constructor(
    private readonly capture: () => StackCapture | null,
    private readonly maxEntries = 500,
    private readonly verifyEvery = 1024,
  ) {}

  /** Where `fn` is being assigned now (called from the assignment, as `capture` expects). */
  siteFor(fn: unknown): StackCapture | null {
    const text = sourceOf(fn);
    if (text === null) return this.capture();
    let entry = this.last !== null && this.last.text === text ? this.last : this.find(text);
    if (entry === undefined) {
      const capture = this.capture();
      if (this.entries >= this.maxEntries) return capture;
      const formatted: StackCapture = { stack: capture?.stack };
      let bucket = this.byLength.get(text.length);
      if (bucket === undefined) this.byLength.set(text.length, (bucket = []));
      bucket.push((entry = { text, site: formatted, uses: 1, ambiguous: false }));
      this.last = entry;
      this.entries++;
      return formatted;
    }
    this.last = entry;
    if (entry.ambiguous) return this.capture();
    const uses = ++entry.uses;
    if ((uses <= 1024 && (uses & (uses - 1)) === 0) || uses % this.verifyEvery === 0) {
      const capture = this.capture();
      if (capture?.stack !== entry.site.stack) {
        entry.ambiguous = true;
        return capture;
      }
    }
    return entry.site;
  }

  private find(text: string): SiteEntry | undefined {
    const bucket = this.byLength.get(text.length);
    if (bucket === undefined) return undefined;
    for (const candidate of bucket) if (candidate.text === text) return candidate;
    return undefined;
  }
}

interface SiteEntry {
  readonly text: string;
  readonly site: StackCapture;
  uses: number;
  ambiguous: boolean;
}

const functionToString = Function.prototype.toString;

/** The function's own source text; null when it has none of its own or reading it fails. */
function sourceOf(fn: unknown): string | null {
  if (typeof fn !== 'function') return null;
  let text: string;
  try {
    text = functionToString.call(fn);
  } catch {
    return null;
  }
  return text.endsWith('{ [native code] }') ? null : text;
}
