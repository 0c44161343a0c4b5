import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withoutCredentials as redactArgument } from '../../src/core/credentials.js';
import { poolLabel } from '../../src/metrics/labels.js';
import { leakwatch } from '../support/cli.js';

const SECRETS = ['s3cr3t-pg', 's3cr3t-redis', 'hunter2', 'tok-123'];

describe("a process's command line in reports", () => {
  it('leaves credentials out of connection strings and password flags, and keeps the rest', () => {
    expect(redactArgument('postgres://app:s3cr3t-pg@db:5432/app?sslmode=require')).toBe('postgres://app:***@db:5432/app?sslmode=require');
    expect(redactArgument('redis://:s3cr3t-redis@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redactArgument('redis://cache:6379')).toBe('redis://cache:6379');
    expect(redactArgument('--db=postgres://user@db/app')).toBe('--db=postgres://user@db/app');
    expect(redactArgument('--password=hunter2')).toBe('--password=***');
    expect(redactArgument('PGPASSWORD=hunter2')).toBe('PGPASSWORD=***');
    expect(redactArgument('--api-key=tok-123')).toBe('--api-key=***');
    expect(redactArgument('host=db user=app password=hunter2 dbname=app')).toBe('host=db user=app password=*** dbname=app');
    expect(redactArgument('server.js')).toBe('server.js');
    expect(redactArgument('--passes=3')).toBe('--passes=3');
  });

  it('is the same scrub a pool name gets as a metric label', () => {
    expect(poolLabel('postgres://app:s3cr3t-pg@db:5432/app')).toBe('postgres://app:***@db:5432/app');
    expect(poolLabel('host=db password=hunter2 dbname=app')).toBe('host=db password=*** dbname=app');
    expect(poolLabel('db:5432/app')).toBe('db:5432/app');
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-argv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never carries them into the JSON report of leakwatch run', async () => {
    const report = path.join(dir, 'r.json');
    const exit = await leakwatch(['run', '--report', report, '--', process.execPath, '-e', 'setTimeout(() => {}, 10)', 'postgres://app:s3cr3t-pg@db/app', 'redis://:s3cr3t-redis@cache', '--password=hunter2', '--token=tok-123']);
    expect(exit.status).toBe(0);
    const text = readFileSync(report, 'utf8');
    const argv = (JSON.parse(text) as { processes: Array<{ argv: string[] }> }).processes.flatMap((p) => p.argv);
    expect(argv).toEqual(expect.arrayContaining(['postgres://app:***@db/app', 'redis://:***@cache', '--password=***', '--token=***']));
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    for (const secret of SECRETS) expect(exit.stdout + exit.stderr).not.toContain(secret);
  });
});
