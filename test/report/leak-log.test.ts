import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serverConfirmation } from '../../src/core/confirmation.js';
import { Ledger } from '../../src/core/ledger.js';
import type { ConnectionProbe, ResponseProbe } from '../../src/core/records.js';
import { install } from '../../src/core/patch.js';
import { installLeakLog } from '../../src/report/leak-log.js';
import { REGISTER, ROOT } from '../support/cli.js';
import { sleep, waitUntil } from '../support/http.js';

const THRESHOLD_MS = 300;
const SECRETS = /qs-secret|sql-param-secret|redis-arg-secret|pw-secret/;
const pgUrl = process.env.LEAKWATCH_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

interface Line {
  text: string;
  /** When the test saw it. */
  at: number;
}

/** test/report/fixtures/leaky-app.mjs under `node --import dist/register.js`, its stderr kept line by line. */
class App {
  readonly lines: Line[] = [];
  stderr = '';
  port = 0;
  private stdout = '';
  private readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    let partial = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const at = Date.now();
      this.stderr += chunk;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const text of parts) this.lines.push({ text, at });
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(env: NodeJS.ProcessEnv): Promise<App> {
    const clean: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(clean)) if (key.startsWith('LEAKWATCH_') || key === 'NODE_OPTIONS') delete clean[key];
    const child = spawn(process.execPath, ['--import', REGISTER, path.join(ROOT, 'test/report/fixtures/leaky-app.mjs')], {
      cwd: ROOT,
      env: {
        ...clean,
        PG_URL: pgUrl,
        REDIS_URL: redisUrl,
        LEAKWATCH_RESPONSE_THRESHOLD: String(THRESHOLD_MS),
        LEAKWATCH_CONNECTION_THRESHOLD: String(THRESHOLD_MS),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new App(child);
    running.push(app);
    await waitUntil(() => app.stdout.includes('\n') || child.exitCode !== null, 10_000, 'the app to listen');
    app.port = (JSON.parse(app.stdout.split('\n')[0]) as { port: number }).port;
    return app;
  }

  get(url: string): http.ClientRequest {
    const req = http.get({ host: '127.0.0.1', port: this.port, path: url, agent: false }, (res) => res.resume());
    req.on('error', () => {});
    return req;
  }

  async json(url: string): Promise<Record<string, number>> {
    const res = await fetch(`http://127.0.0.1:${this.port}${url}`);
    return (await res.json()) as Record<string, number>;
  }

  linesMatching(pattern: RegExp): Line[] {
    return this.lines.filter((line) => pattern.test(line.text));
  }

  async waitForLine(pattern: RegExp, timeoutMs = 5000): Promise<Line> {
    await waitUntil(() => this.linesMatching(pattern).length > 0, timeoutMs, `a line matching ${pattern} in:\n${this.stderr}`);
    return this.linesMatching(pattern)[0];
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

const running: App[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.stop()));
});

describe('leakwatch/register › the leak log', () => {
  describe('when nothing is set (text)', () => {
    it('logs one line for a route that never answers within the threshold and a second, with its route and path and no query string', async () => {
      const app = await App.start({});
      const sentAt = Date.now();
      app.get('/orders/42?token=qs-secret-0');
      const line = await app.waitForLine(/leaked response/, THRESHOLD_MS + 5000);
      expect(line.at - sentAt).toBeLessThanOrEqual(THRESHOLD_MS + 1000);
      expect(line.text).toMatch(/^\[leakwatch\] leaked response \d+:r\d+ GET \/orders\/:id \(path \/orders\/42\) \[unclosed\]: open \d+ ms, stalled$/);
      await sleep(2 * THRESHOLD_MS);
      expect(app.linesMatching(/leaked response/)).toHaveLength(1);
      expect(app.stderr).not.toContain('?');
      expect(app.stderr).not.toMatch(SECRETS);
    });

    it("logs a stranded connection with its owner's route, where it was acquired and what the server says, and each resolution, with no secret", async () => {
      const app = await App.start({});
      app.get('/exports/7?token=qs-secret-0');
      const leaked = await app.waitForLine(/leaked connection/);
      expect(leaked.text).toMatch(
        /^\[leakwatch\] leaked connection pg \d+:pg\d+ on [^:\s]+:\d+\/\w+ \[held-after-response-closed\]: idle for \d+ ms, held \d+ ms; owner \d+:r\d+ GET \/exports\/:id \(path \/exports\/7\), closed; acquired at (?:\S+ \()?\/[^;]*test\/report\/fixtures\/leaky-app\.mjs:\d+:\d+\)?; server says pid \d+, idle for \d+ ms$/,
      );

      app.get('/release');
      expect((await app.waitForLine(/resolved: connection/)).text).toMatch(
        /^\[leakwatch\] resolved: connection pg \d+:pg\d+ on [^:\s]+:\d+\/\w+ \[held-after-response-closed\] released after [\d.]+ m?s held, [\d.]+ m?s after it was reported$/,
      );

      app.get('/late/1');
      await app.waitForLine(/leaked response .* GET \/late\/:id/);
      expect((await app.waitForLine(/resolved: response/)).text).toMatch(
        /^\[leakwatch\] resolved: response \d+:r\d+ GET \/late\/:id \(path \/late\/1\) \[unclosed\] finished after 1\.\d s, \d+ ms after it was reported$/,
      );
      expect(app.stderr).not.toMatch(SECRETS);
      expect(app.stderr).not.toContain('?');
    });

    it('writes the first lines of a burst and then one line saying how many were left out', async () => {
      const app = await App.start({});
      for (let i = 1; i <= 30; i++) app.get(`/orders/${i}`);
      await waitUntil(() => app.linesMatching(/leaked response/).length >= 20, 5000, 'the first leak lines');
      // every one of the 30 is found, as the ledger counts
      for (let totals = await app.json('/leaks'); totals.leakedResponses < 30; totals = await app.json('/leaks')) await sleep(50);
      await sleep(100);
      expect(app.linesMatching(/leaked response/)).toHaveLength(20);
      await app.stop(); // the process ends before the minute is over: the count is written at exit
      expect(app.lines.at(-1)?.text).toBe('[leakwatch] 10 more leak lines left out in the last 60.0 s (at most 20 per 60.0 s); metrics and reports count every leak');
    });
  });

  describe('when LEAKWATCH_LOG=json', () => {
    it('writes one JSON object per line, with the fields docs/leak-log.md lists', async () => {
      const app = await App.start({ LEAKWATCH_LOG: 'json' });
      app.get('/orders/42?token=qs-secret-0');
      app.get('/exports/7?token=qs-secret-0');
      await app.waitForLine(/"type":"connection"/);
      const entries = app.lines.map((line) => JSON.parse(line.text) as Record<string, unknown>);
      expect(entries.find((e) => e.type === 'response')).toEqual({
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        level: 'warn',
        logger: 'leakwatch',
        msg: expect.stringMatching(/^leaked response .* GET \/orders\/:id \(path \/orders\/42\)/),
        event: 'leak',
        type: 'response',
        id: expect.stringMatching(/^\d+:r\d+$/),
        reason: 'unclosed',
        method: 'GET',
        route: '/orders/:id',
        path: '/orders/42',
        ageMs: expect.any(Number),
        connections: [],
        endOverrides: [],
        pendingCommands: [],
      });
      expect(entries.find((e) => e.type === 'connection')).toEqual({
        time: expect.any(String),
        level: 'warn',
        logger: 'leakwatch',
        msg: expect.stringMatching(/^leaked connection pg /),
        event: 'leak',
        type: 'connection',
        id: expect.stringMatching(/^\d+:pg\d+$/),
        kind: 'pg',
        reason: 'held-after-response-closed',
        pool: expect.stringMatching(/^[^:@]+:\d+\/\w+$/),
        state: 'idle',
        idleMs: expect.any(Number),
        heldMs: expect.any(Number),
        owner: { id: expect.stringMatching(/^\d+:r\d+$/), method: 'GET', route: '/exports/:id', path: '/exports/7', state: 'closed' },
        acquiredAt: expect.stringMatching(/leaky-app\.mjs:\d+:\d+$/),
        closed: null,
        ownerEndOverrides: [],
        server: { pid: expect.any(Number), state: 'idle', stateAgeMs: expect.any(Number) },
      });
      expect(app.stderr).not.toMatch(SECRETS);
      expect(app.stderr).not.toContain('?');
    });
  });

  describe('when LEAKWATCH_LOG=off', () => {
    it('writes nothing, though the leaks are found', async () => {
      const app = await App.start({ LEAKWATCH_LOG: 'off' });
      app.get('/orders/42');
      app.get('/exports/7');
      for (let totals = await app.json('/leaks'); totals.leakedResponses < 1 || totals.leakedConnections < 1; totals = await app.json('/leaks')) await sleep(50);
      await sleep(700); // longer than a connection line waits for its server
      await app.stop();
      expect(app.stderr).toBe('');
    });
  });
});

describe('installLeakLog(ledger, options)', () => {
  const probe: ResponseProbe = { progress: () => 0, method: () => 'GET', path: () => '/burst', route: () => '/burst', endOverrides: () => [] };
  let now = 0;
  const ledgerAt = () => {
    const ledger = new Ledger({ responseThresholdMs: 100, connectionThresholdMs: 100, maxReportedLeaks: 10, onFailure: () => {}, currentResponse: () => undefined, clock: () => now, timer: false });
    ledger.observe(serverConfirmation(() => {}, () => ledger.now())); // as the runtime does, before any other observer
    return ledger;
  };

  describe('when a thousand responses leak at once', () => {
    it('writes the first twenty lines, then one line with the count of the rest', () => {
      const ledger = ledgerAt();
      const lines: string[] = [];
      const undo = installLeakLog(ledger, { format: 'text', log: (line) => lines.push(line) });
      for (let i = 0; i < 1000; i++) ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      expect(lines).toHaveLength(20);
      expect(ledger.totals.leakedResponses).toBe(1000);
      undo();
      expect(lines).toHaveLength(21);
      expect(lines[20]).toBe('980 more leak lines left out in the last 60.0 s (at most 20 per 60.0 s); metrics and reports count every leak');
    });

    it('writes the count when the interval ends, and lines again after it', async () => {
      const ledger = ledgerAt();
      const lines: string[] = [];
      const undo = installLeakLog(ledger, { format: 'json', log: (line) => lines.push(line), linesPerInterval: 2, intervalMs: 200 });
      for (let i = 0; i < 5; i++) ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      expect(lines).toHaveLength(2);
      await waitUntil(() => lines.length === 3, 2000, 'the count of the lines left out');
      expect(JSON.parse(lines[2])).toMatchObject({ event: 'suppressed', level: 'info', suppressed: 3, intervalMs: 200 });
      const late = ledger.openResponse({}, probe);
      ledger.closeResponse(late, 'finished');
      const open = ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      ledger.closeResponse(open, 'finished');
      expect(lines.slice(3).map((line) => JSON.parse(line) as { event: string })).toMatchObject([
        { event: 'leak', type: 'response', path: '/burst' },
        { event: 'resolved', type: 'response', path: '/burst', leakedForMs: 0 },
      ]);
      undo();
    });
  });

  describe("when a connection's server does not answer", () => {
    const silentServer: ConnectionProbe = { serverIdentity: () => ({ pid: 4242 }), confirm: () => new Promise(() => {}) };

    it('writes the line after the bounded wait, with what is known', async () => {
      const ledger = ledgerAt();
      const lines: string[] = [];
      const undo = installLeakLog(ledger, { format: 'text', log: (line) => lines.push(line), confirmWaitMs: 50 });
      ledger.acquireConnection({ kind: 'pg', pool: 'main-db', pooled: true, target: {}, probe: silentServer });
      now += 200;
      ledger.sweep();
      expect(lines).toEqual([]);
      await waitUntil(() => lines.length === 1, 2000, 'the line');
      expect(lines[0]).toMatch(/^leaked connection pg \d+:pg\d+ on main-db \[idle-past-threshold\]: idle for 200 ms, held 200 ms; acquired outside any request; server pid 4242, state not confirmed$/);
      undo();
    });

    it('never throws into the app when the log function throws, from a timer either', async () => {
      const ledger = ledgerAt();
      let calls = 0;
      const undo = installLeakLog(ledger, {
        format: 'text',
        log: () => {
          calls++;
          throw new Error('disk full');
        },
        confirmWaitMs: 10,
      });
      ledger.acquireConnection({ kind: 'pg', pool: 'main-db', pooled: true, target: {}, probe: silentServer });
      ledger.openResponse({}, probe);
      now += 200;
      expect(() => ledger.sweep()).not.toThrow();
      await waitUntil(() => calls === 2, 2000, 'both lines to be tried');
      await sleep(20); // an uncaught exception from the timer would fail the test run here
      undo();
    });
  });

  describe('when started twice (as start() installs it)', () => {
    it('logs each leak once, and stops only when the last caller lets go', () => {
      const ledger = ledgerAt();
      const lines: string[] = [];
      const log = () => install(ledger, 'leak log', () => installLeakLog(ledger, { format: 'text', log: (line) => lines.push(line) }));
      const first = log();
      const second = log();
      ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      expect(lines).toHaveLength(1);
      first();
      ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      expect(lines).toHaveLength(2);
      second();
      ledger.openResponse({}, probe);
      now += 200;
      ledger.sweep();
      expect(lines).toHaveLength(2);
    });
  });
});
