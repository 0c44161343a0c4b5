import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl } from './support.js';

const ROOT = path.resolve(__dirname, '../..');
const REGISTER = path.join(ROOT, 'dist/register.js');

/** pg and every package it depends on, as installed here. */
function dependencyClosure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  const manifest = path.join(ROOT, 'node_modules', name, 'package.json');
  if (!existsSync(manifest)) return seen; // an optional dependency not installed
  seen.add(name);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: object; optionalDependencies?: object };
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) dependencyClosure(dep, seen);
  return seen;
}

// What leakwatch/register made of the process: its runtime, from the process-wide slot.
const RUNTIME = `globalThis[Symbol.for('leakwatch.process.v2')]?.get('runtime')?.runtime`;
const heldNow = `(${RUNTIME} ? [...${RUNTIME}.ledger.held].map((c) => ({ kind: c.kind, pool: c.pool, pooled: c.pooled, state: c.state })) : null)`;

// Reports what the app's own pg looks like after `--import leakwatch/register`.
const APP_BODY = `
const runtime = ${RUNTIME};
const pool = new pg.Pool({ connectionString: process.env.PG_URL, max: 1 });
const client = await pool.connect();
const held = runtime ? [...runtime.ledger.held].map((c) => ({ kind: c.kind, pool: c.pool, pooled: c.pooled, state: c.state })) : null;
client.release();
await pool.end();
console.log(JSON.stringify({
  pgPath: require.resolve('pg'),
  poolConnectPatched: pg.Pool.prototype.connect.__wrapped === true,
  clientConnectPatched: pg.Client.prototype.connect.__wrapped === true,
  held,
  heldAfterRelease: runtime ? runtime.ledger.held.size : null,
}));
`;

let dir: string;
beforeAll(() => {
  dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'leakwatch-pg-app-')));
  for (const name of new Set([...dependencyClosure('pg'), ...dependencyClosure('ioredis')])) {
    mkdirSync(path.dirname(path.join(dir, 'node_modules', name)), { recursive: true });
    cpSync(path.join(ROOT, 'node_modules', name), path.join(dir, 'node_modules', name), { recursive: true, dereference: true });
  }
  writeFileSync(path.join(dir, 'package.json'), '{"name":"app","private":true}\n');
  writeFileSync(
    path.join(dir, 'app.mjs'),
    `import pg from 'pg';\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${APP_BODY}`,
  );
  writeFileSync(path.join(dir, 'app.cjs'), `const pg = require('pg');\n(async () => {\n${APP_BODY}\n})();\n`);
  // Deep paths that skip each package's entry point.
  writeFileSync(
    path.join(dir, 'deep-pg.cjs'),
    `const Client = require('pg/lib/client.js');
(async () => {
  const client = new Client({ connectionString: process.env.PG_URL });
  await client.connect();
  const held = ${heldNow};
  await client.end();
  console.log(JSON.stringify({ held, after: ${heldNow} }));
})();\n`,
  );
  writeFileSync(
    path.join(dir, 'deep-redis.mjs'),
    `import built from 'ioredis/built/Redis.js';
const Redis = built.default;
const client = new Redis(process.env.REDIS_URL);
await client.ping();
const held = ${heldNow};
await client.quit();
console.log(JSON.stringify({ held, after: ${heldNow} }));\n`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runApp(file: string): Record<string, unknown> {
  const env: NodeJS.ProcessEnv = { ...process.env, PG_URL: pgUrl(), REDIS_URL: process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379' };
  for (const key of Object.keys(env)) if (key.startsWith('LEAKWATCH_') || key === 'NODE_OPTIONS') delete env[key];
  const run = spawnSync(process.execPath, ['--import', REGISTER, file], { cwd: dir, env, encoding: 'utf8', timeout: 15_000 });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('leakwatch/register › the app’s own copy of pg', () => {
  for (const file of ['app.mjs', 'app.cjs']) {
    it(`is instrumented where it resolves, in an app folder with its own node_modules (${file})`, () => {
      expect(existsSync(REGISTER)).toBe(true); // `npm test` builds dist first
      const seen = runApp(file);
      expect(seen.pgPath).toBe(path.join(dir, 'node_modules/pg/lib/index.js'));
      expect(seen.poolConnectPatched).toBe(true);
      expect(seen.clientConnectPatched).toBe(true);
      expect(seen.held).toEqual([{ kind: 'pg', pool: '127.0.0.1:5432/test', pooled: true, state: 'idle' }]);
      expect(seen.heldAfterRelease).toBe(0);
    });
  }
});

describe('leakwatch/register › a deep path that skips the package’s entry', () => {
  it('instruments pg reached as pg/lib/client.js', () => {
    const seen = runApp('deep-pg.cjs');
    expect(seen.held).toEqual([{ kind: 'pg', pool: '127.0.0.1:5432/test', pooled: false, state: 'idle' }]);
    expect(seen.after).toEqual([]);
  });

  it('instruments ioredis reached as ioredis/built/Redis.js, from an ES module', () => {
    const seen = runApp('deep-redis.mjs');
    expect(seen.held).toEqual([{ kind: 'redis', pool: expect.stringMatching(/:6379\/0$/), pooled: false, state: 'idle' }]);
    expect(seen.after).toEqual([]);
  });
});
