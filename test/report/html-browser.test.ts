import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/json.js';
import { acquisitionSite, routeOfConnection, routeOfResponse, swallowingOverrides } from '../../src/report/root-cause.js';
import { leakwatch, ROOT } from '../support/cli.js';
import { CHROMIUM } from '../support/services.js';

/**
 * The HTML report of a real run (the demo's leak forms, on the real PostgreSQL and Redis) in
 * headless Chromium (Debian's package, driven by playwright-core; no browser is downloaded),
 * started once for the file with a fresh profile.
 */

const noChromium = process.env.LEAKWATCH_TEST_NO_CHROMIUM;
if (noChromium) process.stderr.write(`[html-browser] skipped: ${noChromium}.\n`);

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dir: string;
let report: Report;
let htmlFile: string;
let context: BrowserContext;
/** Every request the browser made, and those that asked for anything but a file of the test. */
const requests: string[] = [];
const intercepted: string[] = [];
const consoleErrors: string[] = [];

async function open(file: string, options: { javaScript?: boolean } = {}): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(3000); // the page is drawn once loaded: nothing to wait for
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') consoleErrors.push(`${file}: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`${file}: ${error.message}`));
  page.on('dialog', (dialog) => {
    consoleErrors.push(`${file}: a dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  if (options.javaScript === false) await (await context.newCDPSession(page)).send('Emulation.setScriptExecutionDisabled', { value: true });
  await page.goto(pathToFileURL(file).href);
  return page;
}

const card = (page: Page, id: string) => page.locator(`article.leak[data-id="${id}"]`);

describe.skipIf(Boolean(noChromium))('the HTML report of the demo, in headless Chromium', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-html-browser-'));
    htmlFile = path.join(dir, 'report.html');
    const jsonFile = path.join(dir, 'report.json');
    const demo = leakwatch(['demo', '--pg-url', process.env.LEAKWATCH_TEST_PG_URL!, '--redis-url', process.env.LEAKWATCH_TEST_REDIS_URL!, '--html', htmlFile, '--report', jsonFile], { timeoutMs: 60_000 });
    context = await chromium.launchPersistentContext(mkdtempSync(path.join(dir, 'profile-')), { executablePath: CHROMIUM, args: FLAGS, viewport: { width: 1280, height: 900 } });
    context.on('request', (request) => requests.push(request.url()));
    // Every request goes through here: the pages the test opens go on, anything else is noted and stopped.
    const pages = pathToFileURL(dir).href + '/';
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(pages) && url.endsWith('.html')) return route.continue();
      intercepted.push(url);
      return route.abort();
    });
    const exit = await demo;
    expect(exit.status, exit.stderr).toBe(0);
    expect(exit.stdout).toContain(`HTML report, with a timeline of each leak: ${htmlFile}`);
    report = JSON.parse(readFileSync(jsonFile, 'utf8')) as Report;
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('when opened from disk', () => {
    it('loads nothing but itself and logs no error; a screenshot is kept in test-artifacts/', async () => {
      const page = await open(htmlFile);
      expect(await page.locator('h1').textContent()).toBe('3 leaked responses, 6 leaked connections');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'html-report-demo.png'), fullPage: true });
      await page.close();
      expect(consoleErrors).toEqual([]);
      expect(intercepted).toEqual([]);
      expect(new Set(requests)).toEqual(new Set([pathToFileURL(htmlFile).href]));
    });

    it('shows every leaked route, in a card of its own or with the response that holds the connection', async () => {
      const page = await open(htmlFile);
      for (const r of report.leakedResponses) {
        expect(await card(page, r.id).isVisible()).toBe(true);
        expect(await card(page, r.id).locator('h3').textContent()).toBe(`${r.method} ${r.path}`);
        expect(await card(page, r.id).getAttribute('data-route')).toBe(routeOfResponse(r));
      }
      for (const c of report.leakedConnections) {
        const holder = c.reason === 'held-by-leaked-response' ? card(page, c.owner!) : card(page, c.id);
        expect(await holder.isVisible()).toBe(true);
        expect(await holder.textContent()).toContain(c.ownerPath!);
        expect(await page.locator('tr[data-filter-route]', { hasText: routeOfConnection(c) }).first().isVisible()).toBe(true);
      }
      await page.close();
    });

    it('draws each timeline with the threshold it passed and the moment it was reported, and the abort where there was one', async () => {
      const page = await open(htmlFile);
      const cards = page.locator('#leaks article.leak');
      expect(await cards.count()).toBe(7);
      for (const leak of await cards.all()) {
        const svg = leak.locator('svg.timeline');
        expect(await svg.isVisible()).toBe(true);
        expect(await svg.locator('.threshold line').count()).toBe(1);
        expect(await svg.locator('.reported line').count()).toBe(1);
      }
      const aborted = report.leakedConnections.filter((c) => c.ownerEvents?.some((e) => e.event === 'aborted'));
      expect(aborted.map((c) => c.ownerPath).sort()).toEqual(['/export', '/users/9']);
      for (const c of aborted) {
        expect(await card(page, c.id).locator('svg .mark-aborted').isVisible()).toBe(true);
        expect(await card(page, c.id).locator('svg .mark-label-aborted').textContent()).toBe('aborted');
      }
      // Nothing else aborted: no mark where there was no abort.
      expect(await page.locator('svg .mark-aborted').count()).toBe(aborted.length);
      await page.close();
    });

    it("names the root cause beside each timeline: the line that swallowed res.end, the app's line that acquired each connection", async () => {
      const page = await open(htmlFile);
      const base = (location: string) => path.basename(location);
      for (const r of report.leakedResponses) {
        for (const o of swallowingOverrides(r)) {
          expect(await card(page, r.id).locator('.cause .swallowed').textContent()).toContain(base(o.at));
          expect(base(o.at)).toMatch(/^demo-app\.mjs:\d+:\d+$/);
        }
      }
      for (const c of report.leakedConnections) {
        const site = acquisitionSite(c.acquiredAt)!;
        const holder = c.reason === 'held-by-leaked-response' ? card(page, c.owner!) : card(page, c.id);
        expect(await holder.locator('.cause .frames .first').first().textContent()).toContain(base(site.location));
      }
      await page.close();
    });

    it('lists resolved leaks apart, greyed', async () => {
      const page = await open(htmlFile);
      const resolved = page.locator('#resolved article.leak');
      expect(await resolved.count()).toBe(report.resolved.length);
      expect(await resolved.first().textContent()).toContain('GET /digest');
      expect(await page.locator('#leaks article.leak', { hasText: 'GET /digest' }).count()).toBe(0);
      const style = await resolved.first().evaluate((element) => getComputedStyle(element));
      expect(Number(style.opacity)).toBeLessThan(1);
      expect(style.filter).toContain('grayscale');
      await page.close();
    });
  });

  describe('when a route or a reason is chosen in the filter', () => {
    it('shows only the leaks that match, and says how many', async () => {
      const page = await open(htmlFile);
      await page.selectOption('#filter-route', '/export');
      const visible = page.locator('article.leak:visible');
      expect(await visible.count()).toBe(1);
      expect(await visible.first().getAttribute('data-route')).toBe('/export');
      expect(await page.locator('#filter-shown').textContent()).toBe('showing 1 of 9 leaks');
      await page.selectOption('#filter-route', '');
      await page.selectOption('#filter-reason', 'unclosed');
      expect(await visible.count()).toBe(4); // three leaked responses, one resolved
      for (const leak of await visible.all()) expect(await leak.getAttribute('data-reasons')).toContain('unclosed');
      await page.click('#filter-reset');
      expect(await visible.count()).toBe(8);
      await page.close();
    });
  });

  describe('when JavaScript is off', () => {
    it('still shows every leak with its timeline, and hides the filter that needs it', async () => {
      const page = await open(htmlFile, { javaScript: false });
      expect(await page.locator('article.leak:visible').count()).toBe(8);
      expect(await page.locator('#leaks svg.timeline:visible').count()).toBe(7);
      expect(await page.locator('#filters').isVisible()).toBe(false);
      await page.close();
    });
  });

  describe('when the report holds markup in routes, paths, stack frames and pool names', () => {
    it('shows it as text: nothing of it becomes an element, runs, or loads', async () => {
      const hostile = '<img src=x onerror="document.title=`pwned`">';
      const tampered = structuredClone(report);
      const r = tampered.leakedResponses[0];
      r.route = `/${hostile}`;
      r.path = `/users/${hostile}`;
      r.endOverrides = [{ at: `/app/${hostile}.js:1:1`, called: true, calledThrough: false }];
      const c = tampered.leakedConnections.find((x) => x.reason === 'held-after-response-closed')!;
      c.pool = `</svg><script>document.title='pwned'</script>`;
      c.ownerPath = `/<svg onload="document.title='pwned'">`;
      c.acquiredAt = `at handler (/app/<b onmouseover=alert(1)>x</b>.js:2:3)`;
      tampered.resolved[0].what = `GET /"><iframe src="https://example.com/">`;
      tampered.processes[0].argv = ['<script>document.title="pwned"</script>'];
      const file = path.join(dir, 'hostile.html');
      writeFileSync(file, formatHtml(tampered));
      const page = await open(file);
      expect(await page.getByText(`GET /users/${hostile}`).first().isVisible()).toBe(true);
      expect(await page.getByText(c.pool).first().isVisible()).toBe(true);
      expect(await page.locator('img, iframe, [onerror], [onload], [onmouseover]').count()).toBe(0);
      expect(await page.locator('script').count()).toBe(1);
      expect(await page.title()).not.toContain('pwned');
      const routes = await page.locator('article.leak').evaluateAll((cards) => cards.map((card) => card.getAttribute('data-route')));
      expect(routes).toContain(`/${hostile}`);
      await page.close();
      expect(consoleErrors).toEqual([]);
      expect(intercepted).toEqual([]);
    });
  });
});
