import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCommand } from '../support/cli.js';
import { installedProject } from '../support/pack.js';

const pgUrl = process.env.LEAKWATCH_TEST_PG_URL!;
const redisUrl = process.env.LEAKWATCH_TEST_REDIS_URL!;

// The versions this repository tests with, so npm finds them in its cache.
const devVersion = (name: string) => `${name}@${(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies[name]}`;

describe('npx leakwatch demo, in a project that installed the packed package with pg, ioredis and prom-client', () => {
  let project: string;
  const npxDemo = (args: string[] = []) => runCommand('npx', ['leakwatch', 'demo', '--pg-url', pgUrl, '--redis-url', redisUrl, ...args], { cwd: project, timeoutMs: 60_000 });

  beforeAll(() => {
    project = installedProject([devVersion('pg'), devVersion('ioredis'), devVersion('prom-client')]);
  }, 120_000);

  it('runs end to end and exits 0', async () => {
    const exit = await npxDemo();
    expect(exit.status, exit.stdout + exit.stderr).toBe(0);
    expect(exit.stdout).toContain('3 leaked responses, 6 leaked connections');
    expect(exit.stdout).toMatch(/GET \/users\/boom \(route \/users\/:id\): never closed/);
    const html = /^HTML report, with a timeline of each leak: (.+\.html)$/m.exec(exit.stdout)?.[1];
    expect(existsSync(html!), exit.stdout).toBe(true);
    rmSync(path.dirname(html!), { recursive: true, force: true });
  }, 90_000);

  describe('when a package the demo needs is missing', () => {
    it('says in one line what to install, and exits 2', async () => {
      const ioredis = path.join(project, 'node_modules', 'ioredis');
      renameSync(ioredis, ioredis + '.away');
      try {
        const exit = await npxDemo();
        expect(exit.status).toBe(2);
        expect(exit.stderr.trim()).toBe('leakwatch: the demo needs ioredis installed beside leakwatch; run: npm install ioredis');
      } finally {
        renameSync(ioredis + '.away', ioredis);
      }
    });
  });

  describe('when the demo app fails to start', () => {
    it("shows the app's own error output", async () => {
      const pgMain = path.join(project, 'node_modules', 'pg', 'lib', 'index.js');
      const original = readFileSync(pgMain, 'utf8');
      writeFileSync(pgMain, "throw new Error('this copy of pg is broken');\n");
      try {
        const exit = await npxDemo();
        expect(exit.status).not.toBe(0);
        expect(exit.stderr).toMatch(/the demo app exited \(1\) before listening:[\s\S]*this copy of pg is broken/);
      } finally {
        writeFileSync(pgMain, original);
      }
    });
  });
});
