import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/core/ledger.js';
import type { ResponseProbe, ResponseRecord } from '../../src/core/records.js';
import { formatHtml } from '../../src/report/html.js';
import { buildReport, type Report } from '../../src/report/json.js';

const HOSTILE = `<img src=x onerror="alert('r')">`;

/** A report whose app data (path, route, res.end site, stack, pool) is markup, from a ledger on a manual clock. */
function hostileReport(): Report {
  let now = Date.parse('2026-11-01T10:00:00Z');
  let current: ResponseRecord | undefined;
  const probe: ResponseProbe = {
    progress: () => 0,
    method: () => 'GET',
    path: () => `/p/${HOSTILE}`,
    route: () => `/${HOSTILE}/:id`,
    endOverrides: () => [{ at: `/app/${HOSTILE}.js:1:2`, called: true, calledThrough: false }],
  };
  const ledger = new Ledger({ responseThresholdMs: 100, connectionThresholdMs: 100, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => current, clock: () => now, timer: false });
  const hung = ledger.openResponse({}, probe);
  const closed = ledger.openResponse({}, probe);
  current = closed;
  ledger.acquireConnection({ kind: 'pg', pool: `</svg><script>alert('p')</script>`, pooled: true, stack: { stack: `Error\n    at h (/app/"><script>alert('s')</script>.js:3:4)` } });
  current = hung;
  ledger.acquireConnection({ kind: 'redis', pool: 'cache&co', pooled: false });
  current = undefined;
  ledger.closeResponse(closed, 'aborted');
  now += 150;
  ledger.sweep(now);
  expect(hung.leak?.reason).toBe('unclosed');
  return buildReport(ledger, now - 200, now);
}

describe('formatHtml(report)', () => {
  const html = formatHtml(hostileReport());

  describe('when routes, paths, res.end sites, stack frames and pool names hold markup', () => {
    it('escapes every one: no element of theirs, and their text is there, escaped', () => {
      expect(html).not.toMatch(/<img|<script>alert|<\/svg><script|onerror="alert/);
      expect(html).toContain('&lt;img src=x onerror=&quot;alert(&#39;r&#39;)&quot;&gt;');
      expect(html).toContain('&lt;/svg&gt;&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;');
      expect(html).toContain('cache&amp;co');
      expect(html.match(/<script>/g)).toHaveLength(1);
    });
  });

  it('forbids the page to load anything, and allows only its own style and script by their hashes', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1];
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1];
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1];
    expect(csp).toBe(`default-src 'none'; style-src ${hash(style)}; script-src ${hash(script)}; img-src 'none'; base-uri 'none'; form-action 'none'`);
    // No attribute that loads or runs anything on any tag (values are quoted, and never hold a quote).
    const attributes = (html.match(/<[a-z][^>]*>/gi) ?? []).flatMap((tag) => [...tag.matchAll(/\s([\w:-]+)="[^"]*"/g)].map((m) => m[1].toLowerCase()));
    expect(attributes.length).toBeGreaterThan(100);
    expect(attributes.filter((name) => /^(?:src|srcset|href|xlink:href|action|formaction|poster|background)$|^on/.test(name))).toEqual([]);
    // No url() in the style but the page's own pattern, and no @import.
    expect(/<style>[\s\S]*<\/style>/.exec(html)![0]).not.toMatch(/url\((?!#lw-)|@import/);
  });

  it("draws the aborted owner's abort and the threshold on the stranded connection's timeline", () => {
    const card = html.split('<article').slice(1).find((part) => part.includes('data-reasons="held-after-response-closed"'))!;
    expect(card).toContain('class="mark mark-aborted"');
    expect(card).toContain('class="threshold"');
  });
});
