import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../support/cli.js';
import { pgUrl } from '../pg/support.js';
import { agentPackages, NODE_LINE } from './support/packages.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/pg-two-pass.cjs', import.meta.url));
const REGISTER = fileURLToPath(new URL('../../dist/register.js', import.meta.url));

interface Counted {
  queries: number;
  beside: number;
  afterStop: number;
  stillWrapped: boolean;
}

let packages: string;
beforeAll(async () => {
  packages = (await agentPackages()).dir;
}, 180_000);

async function run(at: 'none' | 'register' | 'between' | 'after'): Promise<Counted> {
  const env: NodeJS.ProcessEnv = { PG_URL: pgUrl(), AGENT_PACKAGES: packages, TWO_PASS_LEAKWATCH_AT: at, OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', NODE_OPTIONS: '' };
  for (const key of Object.keys(process.env)) if (key.startsWith('LEAKWATCH_')) env[key] = undefined;
  env.TWO_PASS_LEAKWATCH_AT = at;
  const exit = await runCommand(process.execPath, [...(at === 'register' ? ['--import', REGISTER] : []), FIXTURE], { env, timeoutMs: 30_000 });
  expect(exit.stderr).toBe('');
  expect(exit.status).toBe(0);
  return JSON.parse(exit.stdout.trim().split('\n').at(-1)!) as Counted;
}

describe(`OpenTelemetry's two-pass pg patching (pg/lib/client.js, then pg) beside leakwatch, ${NODE_LINE}`, () => {
  it('records one span per query without leakwatch (the reference)', async () => {
    expect(await run('none')).toEqual({ queries: 30, beside: 30, afterStop: 30, stillWrapped: true });
  });

  describe.each([
    { at: 'register', when: 'when leakwatch is preloaded, before both passes' },
    { at: 'between', when: 'when start() comes between the two passes (leakwatch wraps OpenTelemetry’s first wrapper)' },
    { at: 'after', when: 'when start() comes after both passes' },
  ] as const)('$when', ({ at }) => {
    it('records exactly one span per query, and still one after stop()', async () => {
      expect(await run(at)).toEqual({ queries: 30, beside: 30, afterStop: 30, stillWrapped: true });
    });
  });
});
