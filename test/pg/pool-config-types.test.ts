import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';
import { packedProject } from '../support/pack.js';

/**
 * `new pg.Pool({ leakwatchName })`, as the README shows it, type-checked by tsc in projects that
 * installed the packed package: with @types/pg the option is known (module resolution nodenext,
 * node16 or bundler); without @types/pg nothing of leakwatch's types fails, even with skipLibCheck
 * off, where a plain `declare module 'pg'` would (TS2665: an untyped module cannot be augmented).
 */

const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const tsconfig = (moduleResolution: string, files: string[], skipLibCheck = true) =>
  JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      skipLibCheck,
      target: 'ES2022',
      module: moduleResolution === 'bundler' ? 'ESNext' : moduleResolution,
      moduleResolution,
      esModuleInterop: true,
      types: ['node'],
    },
    files,
  });

const USES_OPTION = `
import pg from 'pg';
import { start, watchPool } from 'leakwatch';

start({ responseThreshold: '30s' });
const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1/app', max: 5, leakwatchName: 'main-db' });
watchPool(pool);
`;

const MISSPELLS_OPTION = `
import pg from 'pg';
export const pool = new pg.Pool({ leakwatchNam: 'main-db' });
`;

const NO_PG_TYPES = `
import { start, createMetrics } from 'leakwatch';

start({ leakLog: 'json' });
createMetrics();
`;

/** How long one tsc run may take: the test that runs it waits as long (tsc takes seconds, more on a loaded machine). */
const TSC_TIMEOUT_MS = 60_000;

function tsc(dir: string, config: string) {
  const run = spawnSync(process.execPath, [TSC, '-p', config], { cwd: dir, encoding: 'utf8', timeout: TSC_TIMEOUT_MS });
  return { status: run.status, output: run.stdout + run.stderr };
}

describe("leakwatch's types › pg's PoolConfig", () => {
  describe('when the project has @types/pg', () => {
    let dir = '';
    beforeAll(() => {
      dir = packedProject(
      {
        'package.json': JSON.stringify({ name: 'app', private: true, type: 'module' }),
        'app.ts': USES_OPTION,
        'misspelt.ts': MISSPELLS_OPTION,
        // One run checks both files: each test reads the errors of its own file (tsc takes seconds).
        'tsconfig.json': tsconfig('nodenext', ['app.ts', 'misspelt.ts']),
        'tsconfig.bundler.json': tsconfig('bundler', ['app.ts']),
      },
      ['typescript', 'pg', '@types/pg', '@types/node', 'prom-client'],
      );
      made.push(dir);
    }, 60_000);

    /** tsc's run over app.ts and misspelt.ts (nodenext), made once for the two tests that read it. */
    let nodenext: ReturnType<typeof tsc> | undefined;
    const nodenextRun = () => (nodenext ??= tsc(dir, 'tsconfig.json'));
    const errorLines = (output: string, file: string) => output.split('\n').filter((line) => line.startsWith(file));

    it('accepts leakwatchName as a pool option (nodenext)', () => {
      const result = nodenextRun();
      expect(errorLines(result.output, 'app.ts')).toEqual([]);
      // The misspelt file's error is the only one.
      expect(result.output.trim().split('\n')).toHaveLength(1);
    }, TSC_TIMEOUT_MS);

    it('accepts leakwatchName as a pool option (bundler)', () => {
      const result = tsc(dir, 'tsconfig.bundler.json');
      expect(result.output).toBe('');
      expect(result.status).toBe(0);
    }, TSC_TIMEOUT_MS);

    it('still rejects a misspelt option (the check can fail), with leakwatchName known in the same program', () => {
      const result = nodenextRun();
      expect(errorLines(result.output, 'misspelt.ts')).toEqual([
        expect.stringMatching(/^misspelt\.ts\(3,\d+\): error TS2561: .*'leakwatchNam' does not exist in type 'PoolConfig'\. Did you mean to write 'leakwatchName'\?/),
      ]);
      expect(result.status).not.toBe(0);
    }, TSC_TIMEOUT_MS);
  });

  describe('when the project has pg without @types/pg', () => {
    let dir = '';
    beforeAll(() => {
      dir = packedProject(
      {
        'package.json': JSON.stringify({ name: 'app', private: true, type: 'module' }),
        'app.ts': NO_PG_TYPES,
        // Off, or an error inside leakwatch's own declarations would go unseen.
        'tsconfig.json': tsconfig('nodenext', ['app.ts'], false),
      },
      ['typescript', 'pg', '@types/node', 'prom-client'],
      );
      made.push(dir);
    }, 60_000);

    it('type-checks, with skipLibCheck off', () => {
      const result = tsc(dir, 'tsconfig.json');
      expect(result.output).toBe('');
      expect(result.status).toBe(0);
    }, TSC_TIMEOUT_MS);
  });
});
