import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Report } from '../../../src/report/json.js';
import { runCommand } from '../../support/cli.js';
import { pgUrl } from '../../pg/support.js';
import { REDIS_URL } from '../../support/redis.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const ROOT = path.resolve(FIXTURES, '../../..');
export const APP = path.join(FIXTURES, 'app.cjs');
const SCENARIO = path.join(FIXTURES, 'scenario.cjs');
const AGENT = path.join(FIXTURES, 'agent.cjs');
const REGISTER = path.join(ROOT, 'dist/register.js');

export type AgentName = 'otel' | 'sentry' | 'datadog' | 'patcher';

/** What an agent recorded: spans (or transactions) per name, or a patcher's call counts. */
export interface Recorded {
  total?: number;
  byName?: Record<string, { count: number; routes: string[]; dbSystems: string[]; roots: number }>;
  counts?: Record<string, number>;
}

export interface ScenarioResult {
  /** Each exchange's raw bytes, the Date header taken out. */
  responses: string[];
  recorded: Recorded | null;
  report: Report | null;
  stderr: string;
}

export interface Order {
  name: string;
  mode: 'preload' | 'start';
  order: 'leakwatch-first' | 'agent-first';
}

/** The four ways leakwatch and an agent meet in a process. */
export const ORDERS: readonly Order[] = [
  { name: "leakwatch/register is preloaded before the agent's own preload", mode: 'preload', order: 'leakwatch-first' },
  { name: "the agent's own preload comes before leakwatch/register", mode: 'preload', order: 'agent-first' },
  { name: "start() is called before the agent's init", mode: 'start', order: 'leakwatch-first' },
  { name: "the agent's init comes before start()", mode: 'start', order: 'agent-first' },
];

/** A loopback port nothing listens on: where an agent's exporter or DSN points, never answered. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs the shared app with `agent` (or none) and leakwatch as `how` says (or not at all), in a process of its own. */
export async function runScenario(agent: AgentName | null, how: Order | null, packagesDir: string, agentPort: number): Promise<ScenarioResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LEAKWATCH_') && key !== 'NODE_OPTIONS' && !key.startsWith('OTEL_') && !key.startsWith('DD_')) env[key] = value;
  Object.assign(env, {
    PG_URL: pgUrl(),
    REDIS_URL,
    LEAKWATCH_RESPONSE_THRESHOLD: '200',
    LEAKWATCH_CONNECTION_THRESHOLD: '200',
    SCENARIO_LEAKWATCH_MODE: how?.mode ?? 'none',
    AGENT_ORDER: how?.order ?? '',
    AGENT_NAME: agent ?? '',
    AGENT_PACKAGES: packagesDir,
    AGENT_CLOSED_PORT: String(agentPort),
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
    DD_REMOTE_CONFIGURATION_ENABLED: 'false',
    DD_CRASHTRACKING_ENABLED: 'false',
    DD_TRACE_STARTUP_LOGS: 'false',
  });
  const args: string[] = [];
  const agentPreload = agent !== null && (how === null || how.mode === 'preload');
  if (agentPreload) env.AGENT_PRELOAD = '1';
  if (how?.mode === 'preload') {
    const both = ['--import', REGISTER, '--import', AGENT];
    args.push(...(how.order === 'leakwatch-first' ? both : [...both.slice(2), ...both.slice(0, 2)]));
  } else if (agentPreload) {
    args.push('--import', AGENT);
  }
  const exit = await runCommand(process.execPath, [...args, SCENARIO], { env, timeoutMs: 30_000 });
  if (exit.status !== 0) throw new Error(`the scenario failed (${exit.status ?? exit.signal}):\n${exit.stderr}`);
  const result = JSON.parse(exit.stdout.trim().split('\n').at(-1)!) as Omit<ScenarioResult, 'stderr'>;
  return { ...result, stderr: exit.stderr };
}

/** `file:line` where the fixture app replaces res.end with one that never calls through. */
export function swallowSite(): RegExp {
  const line = readFileSync(APP, 'utf8').split('\n').findIndex((text) => text.includes('res.end = function swallowingEnd')) + 1;
  return new RegExp(`^${APP.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+$`);
}
