/**
 * The HTML report's stylesheet and script, inlined into the page (the page loads nothing). The
 * script only filters; everything else, timelines included, is drawn without it.
 */

export const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --card: #fff; --ink: #1c2430; --muted: #5d6878; --faint: #8a94a3; --line: #dde2e8; --soft: #eef1f5;
  --bad: #c62828; --bad-soft: #fdecec; --warn: #b45309; --good: #1b7f3b; --good-soft: #e8f5ec;
  --open: #9aa6b6; --stalled: #d32f2f; --stalled-soft: #f8c9c9; --busy: #2563eb; --idle: #e8a317;
  --idle-tx: #e8590c; --idle-tx-aborted: #9c2c06; --subscriber: #7c3aed; --closed: #4b5563; --server: #0d7f74; --unknown: #c5ccd6;
  --threshold: #b45309; --reported: #c62828;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161c; --card: #1b2129; --ink: #e3e8ef; --muted: #a3adbb; --faint: #7d8896; --line: #2e3742; --soft: #232b35;
    --bad: #ff6b6b; --bad-soft: #3a1f22; --warn: #f0a340; --good: #4cc37a; --good-soft: #1c3326;
    --open: #6b7889; --stalled: #ff6b6b; --stalled-soft: #5a2a2d; --busy: #5b8def; --idle: #f0b429;
    --idle-tx: #ff8a3d; --idle-tx-aborted: #d9541a; --subscriber: #a78bfa; --closed: #9ca3af; --server: #2bb3a5; --unknown: #4a5563;
    --threshold: #f0a340; --reported: #ff6b6b;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { background: var(--bg); color: var(--ink); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
body { margin: 0 auto; max-width: 1280px; padding: 24px 28px 48px; }
code, .mono { font-family: var(--mono); font-size: 0.88em; }
h1, h2, h3, h4 { margin: 0; line-height: 1.25; }
h2 { font-size: 1.15rem; margin: 32px 0 12px; }
a { color: inherit; }
.svg-defs { position: absolute; width: 0; height: 0; overflow: hidden; }
.svg-defs .p-soft { fill: var(--stalled-soft); }
.svg-defs .p-hard { fill: var(--stalled); }

.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 18px; margin-bottom: 6px; }
.brand { font-weight: 700; letter-spacing: 0.02em; color: var(--muted); text-transform: lowercase; }
.status { font-size: 1.6rem; }
.status.bad { color: var(--bad); }
.status.good { color: var(--good); }
.run { color: var(--muted); margin: 0 0 18px; }

.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.stat .n { font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.stat .k { color: var(--muted); font-size: 0.85rem; }
.stat.bad { border-color: var(--bad); background: var(--bad-soft); }
.stat.bad .n { color: var(--bad); }
.stat .thresholds { font-size: 0.95rem; font-weight: 600; margin-top: 4px; }

table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 7px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); background: var(--soft); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td > code { white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
html.js tr[data-filter-route] { cursor: pointer; }
html.js tr[data-filter-route]:hover td { background: var(--soft); }

.causes { margin: 0; padding-left: 1.4em; }
.causes li { margin: 6px 0; }
.causes .count { font-weight: 650; }
.causes .routes { color: var(--muted); }

.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.78rem; font-weight: 600; background: var(--bad-soft); color: var(--bad); border: 1px solid currentColor; white-space: nowrap; }
.badge.resolved { background: var(--soft); color: var(--muted); }

.filters { display: none; position: sticky; top: 0; z-index: 2; background: var(--bg); padding: 10px 0; border-bottom: 1px solid var(--line); margin-top: 24px; gap: 10px 18px; align-items: center; flex-wrap: wrap; }
html.js .filters { display: flex; }
.filters label { color: var(--muted); font-size: 0.9rem; display: flex; gap: 6px; align-items: center; }
.filters select { font: inherit; color: var(--ink); background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; max-width: 360px; }
.filters .shown { color: var(--muted); font-size: 0.9rem; margin-left: auto; }
.filters button { font: inherit; font-size: 0.9rem; background: none; border: 1px solid var(--line); border-radius: 6px; padding: 3px 10px; color: var(--muted); cursor: pointer; }

.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; color: var(--muted); font-size: 0.85rem; margin: 0 0 12px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 18px; height: 10px; border-radius: 2px; }
.sw.s-open { background: var(--open); }
.sw.s-stalled { background: repeating-linear-gradient(135deg, var(--stalled) 0 3px, var(--stalled-soft) 3px 6px); }
.sw.s-busy { background: var(--busy); }
.sw.s-idle { background: var(--idle); }
.sw.s-idle-in-transaction { background: var(--idle-tx); }
.sw.s-subscriber { background: var(--subscriber); }
.sw.s-closed { background: repeating-linear-gradient(90deg, var(--closed) 0 2px, transparent 2px 5px); }
.sw.s-server { background: var(--server); height: 6px; }
.sw.l-threshold { width: 0; height: 14px; border-left: 2px dashed var(--threshold); border-radius: 0; }
.sw.l-reported { width: 0; height: 14px; border-left: 2px solid var(--reported); border-radius: 0; }
.sw.m-aborted { width: auto; height: auto; color: var(--bad); font-weight: 700; font-style: normal; }
.sw.m-wrote { width: auto; height: auto; color: var(--good); font-size: 0.7rem; font-style: normal; }
.method { color: var(--muted); font-weight: 600; }

.leak { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 8px; padding: 14px 16px 10px; margin: 0 0 14px; }
.leak-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 12px; }
.leak-head h3 { font-size: 1.08rem; font-weight: 650; word-break: break-all; }
.leak-head .route { color: var(--muted); }
.leak-head .facts { color: var(--muted); margin-left: auto; font-size: 0.9rem; }
.why { margin: 6px 0 10px; }
.leak-body { display: grid; grid-template-columns: minmax(0, 3fr) minmax(260px, 2fr); gap: 16px; align-items: start; }
@media (max-width: 1000px) { .leak-body { grid-template-columns: 1fr; } }
.timeline-box { overflow-x: auto; }
svg.timeline { width: 100%; height: auto; display: block; font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
.no-timeline { color: var(--muted); font-style: italic; }

.cause { background: var(--soft); border-radius: 6px; padding: 10px 12px; font-size: 0.92rem; }
.cause h4 { font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 10px 0 4px; }
.cause h4:first-child { margin-top: 0; }
.cause p { margin: 4px 0; }
.cause ul { list-style: none; margin: 0; padding: 0; }
.cause li { margin: 3px 0; }
.site { word-break: break-all; }
.site .dir { color: var(--faint); }
.site b { font-weight: 650; }
.verdict { font-size: 0.8rem; font-weight: 600; margin-left: 4px; white-space: nowrap; }
.verdict.bad { color: var(--bad); }
.verdict.ok { color: var(--good); }
.verdict.meh { color: var(--warn); }
.swallowed { background: var(--bad-soft); border-radius: 4px; padding: 3px 6px; margin: 3px -6px !important; }
.frames li { padding-left: 12px; text-indent: -12px; }
.frames .fn { font-weight: 600; }
.frames .first { background: var(--card); border-radius: 4px; padding: 2px 6px 2px 18px; margin-left: -6px; }
.frames details summary { color: var(--muted); cursor: pointer; font-size: 0.85rem; }
.held { border-top: 1px dashed var(--line); margin-top: 8px; padding-top: 6px; }

details.events { margin-top: 6px; }
details.events summary { color: var(--muted); font-size: 0.85rem; cursor: pointer; }
details.events table { margin-top: 6px; font-size: 0.85rem; }
details.events td, details.events th { padding: 3px 10px; }

.resolved-list .leak { border-left-color: var(--line); opacity: 0.62; filter: grayscale(1); }
.resolved-list .leak:hover { opacity: 0.9; }
.section-note { color: var(--muted); margin: -6px 0 12px; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 36px; color: var(--muted); font-size: 0.85rem; }
footer details { margin: 6px 0; }

svg .grid { stroke: var(--line); stroke-width: 1; }
svg .divider { stroke: var(--line); stroke-width: 1; }
svg .tick { fill: var(--faint); font-size: 11px; }
svg .lane-label { fill: var(--ink); font-size: 13px; font-weight: 600; }
svg .lane-sublabel { fill: var(--muted); font-size: 11px; }
svg .span.s-open, svg .open-end.s-open { fill: var(--open); }
svg .span.s-stalled, svg .open-end.s-stalled { fill: url(#lw-stalled); stroke: var(--stalled); stroke-width: 1; }
svg .open-end.s-stalled { fill: var(--stalled); }
svg .span.s-busy, svg .open-end.s-busy { fill: var(--busy); }
svg .span.s-idle, svg .open-end.s-idle { fill: var(--idle); }
svg .span.s-idle-in-transaction, svg .open-end.s-idle-in-transaction { fill: var(--idle-tx); }
svg .span.s-idle-in-transaction-aborted, svg .open-end.s-idle-in-transaction-aborted { fill: var(--idle-tx-aborted); }
svg .span.s-subscriber, svg .open-end.s-subscriber { fill: var(--subscriber); }
svg .span.s-closed, svg .open-end.s-closed { fill: var(--closed); opacity: 0.6; }
svg .span.s-unknown, svg .open-end.s-unknown { fill: var(--unknown); }
svg .span.s-server { fill: var(--server); }
svg .mark-aborted path { stroke: var(--bad); stroke-width: 2.5; stroke-linecap: round; }
svg .mark-finished line, svg .mark-released line { stroke: var(--good); stroke-width: 3; stroke-linecap: round; }
svg .mark-wrote path { fill: var(--good); }
svg .mark-waited circle { fill: none; stroke: var(--busy); stroke-width: 1.5; }
svg .mark-leaked circle { fill: var(--card); stroke: var(--reported); stroke-width: 2; }
svg .mark-confirmed circle { fill: var(--card); stroke: var(--server); stroke-width: 2; }
svg .mark-label { font-size: 11.5px; font-weight: 650; }
svg .mark-label-aborted { fill: var(--bad); }
svg .mark-label-finished, svg .mark-label-released { fill: var(--good); }
svg .threshold line { stroke: var(--threshold); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg .threshold text { fill: var(--threshold); font-size: 11.5px; font-weight: 650; }
svg .reported line { stroke: var(--reported); stroke-width: 2; }
svg .reported text { fill: var(--reported); font-size: 11.5px; font-weight: 650; }
svg .ran-on { fill: var(--faint); font-size: 11px; font-style: italic; }
`;

export const SCRIPT = `
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var route = document.getElementById('filter-route');
  var reason = document.getElementById('filter-reason');
  var shown = document.getElementById('filter-shown');
  var reset = document.getElementById('filter-reset');
  if (!route || !reason) return;
  var cards = Array.prototype.slice.call(document.querySelectorAll('article.leak'));
  var lists = Array.prototype.slice.call(document.querySelectorAll('[data-list]'));
  function matches(card) {
    if (route.value && card.getAttribute('data-route') !== route.value) return false;
    if (reason.value && (' ' + card.getAttribute('data-reasons') + ' ').indexOf(' ' + reason.value + ' ') < 0) return false;
    return true;
  }
  function apply() {
    var open = 0, total = 0;
    cards.forEach(function (card) {
      var ok = matches(card);
      card.hidden = !ok;
      var count = Number(card.getAttribute('data-count') || 0);
      total += count;
      if (ok) open += count;
    });
    lists.forEach(function (list) {
      var any = list.querySelector('article.leak:not([hidden])') !== null;
      var empty = list.querySelector('.filtered-out');
      if (empty) empty.hidden = any || list.querySelector('article.leak') === null;
    });
    var leaks = function (n) { return n + (n === 1 ? ' leak' : ' leaks'); };
    shown.textContent = (route.value || reason.value) ? 'showing ' + open + ' of ' + leaks(total) : leaks(total) + ' unresolved';
    reset.hidden = !(route.value || reason.value);
  }
  route.addEventListener('change', apply);
  reason.addEventListener('change', apply);
  reset.addEventListener('click', function () { route.value = ''; reason.value = ''; apply(); });
  Array.prototype.forEach.call(document.querySelectorAll('tr[data-filter-route]'), function (row) {
    row.addEventListener('click', function () {
      route.value = row.getAttribute('data-filter-route');
      reason.value = '';
      apply();
      document.getElementById('filters').scrollIntoView({ block: 'start' });
    });
  });
  apply();
})();
`;
