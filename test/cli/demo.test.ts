import { existsSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/services.js';
import { leakwatch } from '../support/cli.js';

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
  }, 150_000);

  it('says what it does with --help', async () => {
    const help = await leakwatch(['demo', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--serve');
  });
});
