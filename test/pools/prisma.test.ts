import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createApp, healthyTraffic } from '../../fixtures/prisma-app.mjs';
import { ROOT } from '../support/cli.js';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

/**
 * `prisma generate` from the registry packages alone. The CLI insists on downloading its schema
 * engine (binaries.prisma.sh) before generating, although generate never runs it; pointing
 * PRISMA_SCHEMA_ENGINE_BINARY at a stand-in that only says so skips the download. The generated
 * client runs on the query compiler shipped (as WebAssembly) in @prisma/client and talks to
 * PostgreSQL through @prisma/adapter-pg's pg Pool.
 */
function generateClient(): { PrismaClient: unknown } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-prisma-'));
  const standIn = path.join(dir, 'schema-engine-not-used');
  writeFileSync(standIn, '#!/bin/sh\necho "the leakwatch tests never run the schema engine" >&2\nexit 1\n');
  chmodSync(standIn, 0o755);
  const run = spawnSync(path.join(ROOT, 'node_modules/.bin/prisma'), ['generate', '--schema', path.join(ROOT, 'fixtures/prisma/schema.prisma')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: standIn, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  });
  rmSync(dir, { recursive: true, force: true });
  if (run.status !== 0) throw new Error(`prisma generate failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  const client = path.join(ROOT, 'node_modules/.cache/leakwatch-prisma-client');
  return createRequire(import.meta.url)(client) as { PrismaClient: unknown };
}

let generated: { PrismaClient: unknown } | undefined;

describeLibrary({
  library: 'Prisma 7 with @prisma/adapter-pg (pg-pool)',
  fixture: 'prisma-app.mjs',
  createApp: () => createApp({ PrismaClient: (generated ??= generateClient()).PrismaClient, connection: pgUrl(), max: 4 }),
  healthyTraffic,
  // Prisma starts an interactive transaction when its lazy promise is awaited: V8 calls its then()
  // from a microtask, with no frame of the app below and no async frame leading back to it.
  leak: { path: '/orders', ownerPath: '/orders', status: 202, state: 'idle-in-transaction', acquiredOn: null },
});
