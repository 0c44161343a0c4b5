import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/services.js';
import { CLI, leakwatch, runCommand } from '../support/cli.js';

const pgUrl = process.env.LEAKWATCH_TEST_PG_URL!;
const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL!;

/** A PATH with every command of this one except `name`. */
function pathWithout(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `leakwatch-path-without-${name}-`));
  for (const from of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!from || !existsSync(from)) continue;
    for (const entry of readdirSync(from)) {
      if (entry === name || existsSync(path.join(dir, entry))) continue;
      symlinkSync(path.join(from, entry), path.join(dir, entry));
    }
  }
  return dir;
}

/** Live processes whose environment holds `marker` (the demo passes its environment to its app). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const state = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z' && readFileSync(`/proc/${name}/environ`, 'utf8').includes(marker)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('leakwatch demo', () => {
  it('runs the leaky app, drives traffic and prints every leak form with its root cause, then exits 0', async () => {
    const exit = await leakwatch(['demo', '--pg-url', pgUrl, '--redis-url', redisUrl], { timeoutMs: 60_000 });
    expect(exit.status, exit.stderr).toBe(0);
    const out = exit.stdout;
    expect(out).toContain('3 leaked responses, 6 leaked connections');
    expect(out).toMatch(/GET \/users\/boom \(route \/users\/:id\): never closed .*\[unclosed\]/);
    expect(out).toMatch(/res\.end replaced at .*demo-app\.mjs:\d+:\d+: called, but did not call the end it replaced/);
    expect(out).toMatch(/\[held-by-leaked-response\]/);
    expect(out).toMatch(/idle-in-transaction for .*\[held-after-response-closed\]/);
    expect(out).toMatch(/server says: pid \d+, idle in transaction/);
    expect(out).toMatch(/owned by \d+:r\d+, GET \/export, closed/);
    expect(out).toMatch(/redis .*subscriber for .*\[held-after-response-closed\]/);
    expect(out).not.toMatch(/secret|alice/);
    expect(out).toContain('3 leaked responses, 6 leaked connections, 1 resolved');
    const html = /^HTML report, with a timeline of each leak: (.+\.html)$/m.exec(out)?.[1];
    expect(html, out).toBeDefined();
    expect(readFileSync(html!, 'utf8')).toMatch(/^<!doctype html>[\s\S]*GET \/users\/boom[\s\S]*<\/html>\n$/);
    rmSync(path.dirname(html!), { recursive: true, force: true });
  });

  it('starts embedded PostgreSQL when none answers, and only the pg part when Redis cannot be had', async () => {
    const deadPg = `postgres://postgres@127.0.0.1:${await freePort()}/test`;
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const exit = await leakwatch(['demo', '--pg-url', deadPg, '--redis-url', deadRedis], { timeoutMs: 120_000, env: { PATH: pathWithout('redis-server') } });
    expect(exit.status, exit.stdout + exit.stderr).toBe(0);
    expect(exit.stdout).toContain('starting an embedded one');
    expect(exit.stdout).toMatch(/started embedded PostgreSQL on 127\.0\.0\.1:\d+/);
    expect(exit.stdout).toMatch(/Redis part is left out: no redis-server on PATH; install it \(Debian\/Ubuntu: apt-get install redis-server\)/);
    expect(exit.stdout).toContain('3 leaked responses, 5 leaked connections');
    expect(exit.stdout).toMatch(/idle-in-transaction for .*\[held-after-response-closed\]/);
    const html = /^HTML report, with a timeline of each leak: (.+\.html)$/m.exec(exit.stdout)?.[1];
    if (html !== undefined) rmSync(path.dirname(html), { recursive: true, force: true });
  }, 150_000);

  it.runIf(process.getuid?.() === 0)('as root, names the temporary folder the postgres user cannot reach when embedded PostgreSQL cannot start there', async () => {
    const privateTmp = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-private-tmp-')); // 0700: root's alone
    try {
      const deadPg = `postgres://postgres@127.0.0.1:${await freePort()}/test`;
      const exit = await leakwatch(['demo', '--pg-url', deadPg, '--redis-url', redisUrl], { timeoutMs: 120_000, env: { TMPDIR: privateTmp } });
      expect(exit.status, exit.stdout + exit.stderr).not.toBe(0);
      expect(exit.stderr).toContain(`initdb runs as the postgres system user, which cannot reach the temporary folder ${privateTmp}`);
      expect(exit.stderr).toContain('set TMPDIR to a folder every user can enter');
    } finally {
      rmSync(privateTmp, { recursive: true, force: true });
    }
  }, 150_000);

  describe('when its output is closed early (leakwatch demo | head -3)', () => {
    it('stops, and leaves nothing running', async () => {
      const marker = `LEAKWATCH_DEMO_TEST_MARKER=${randomUUID()}`;
      const pipeline = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} demo --pg-url ${JSON.stringify(pgUrl)} --redis-url ${JSON.stringify(redisUrl)} | head -3`;
      const exit = await runCommand('sh', ['-c', `export ${marker}; ${pipeline}`], { timeoutMs: 30_000 });
      expect(exit.stdout.trim().split('\n')).toHaveLength(3);
      expect(exit.stdout).toContain('app listening on');
      const until = Date.now() + 5000;
      while (processesWith(marker).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(processesWith(marker)).toEqual([]);
    });
  });

  it('says what it does with --help', async () => {
    const help = await leakwatch(['demo', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--serve');
    expect(help.stdout).toContain('--html FILE');
  });
});
