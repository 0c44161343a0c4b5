import type { Report } from './json.js';
import { describeLeakedConnection, describeLeakedResponse } from './text.js';

const escape = (text: string) =>
  text
    // eslint-disable-next-line no-control-regex -- XML 1.0 forbids these characters, even escaped
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

/**
 * JUnit XML: one test case per leaked response and per leaked connection, each failed with the
 * readable description; a passing case when nothing leaked so that CI viewers show the check ran.
 * Test-case names use route templates (`GET /orders/:id unclosed`), the same from run to run, so a
 * viewer can follow one leak across runs; the concrete path is in the failure. Without a known
 * route, the path stands in.
 */
export function formatJunit(report: Report): string {
  const cases: string[] = [];
  for (const r of report.leakedResponses) {
    const name = `${r.method} ${r.route ?? r.path} ${r.reason}`;
    cases.push(
      `    <testcase classname="leakwatch.responses" name="${escape(name)}" time="${(r.ageMs / 1000).toFixed(3)}">\n` +
        `      <failure type="${r.reason}" message="${escape(`${r.method} ${r.path}: ${r.reason}`)}">${escape(describeLeakedResponse(r))}</failure>\n` +
        `    </testcase>`,
    );
  }
  for (const c of report.leakedConnections) {
    const ownerRoute = c.ownerRoute ?? c.ownerPath;
    const name = `${c.kind} ${c.pool} ${c.reason}${ownerRoute ? ` (${c.ownerMethod ? `${c.ownerMethod} ` : ''}${ownerRoute})` : ''}`;
    cases.push(
      `    <testcase classname="leakwatch.connections" name="${escape(name)}" time="${(c.heldMs / 1000).toFixed(3)}">\n` +
        `      <failure type="${c.reason}" message="${escape(`${c.kind} connection ${c.id}: ${c.reason}`)}">${escape(describeLeakedConnection(c))}</failure>\n` +
        `    </testcase>`,
    );
  }
  const failures = cases.length;
  if (failures === 0) cases.push(`    <testcase classname="leakwatch" name="no leaked responses or connections" time="0"/>`);
  const seconds = (Date.parse(report.endedAt) - Date.parse(report.startedAt)) / 1000;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="leakwatch" tests="${cases.length}" failures="${failures}" time="${seconds.toFixed(3)}">\n` +
    `  <testsuite name="leakwatch" tests="${cases.length}" failures="${failures}" errors="0" skipped="0" timestamp="${report.startedAt}" time="${seconds.toFixed(3)}">\n` +
    `${cases.join('\n')}\n` +
    `  </testsuite>\n` +
    `</testsuites>\n`
  );
}
