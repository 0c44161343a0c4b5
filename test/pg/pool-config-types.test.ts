import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';
import { folderDependencies, installedFolder } from '../support/installed-folder.js';
import { packedProject } from '../support/pack.js';

/**
 * `new pg.Pool({ leakwatchName })`, as the README shows it, type-checked by tsc (TypeScript 5.9 and
 * 7) in projects that installed the packed package: with @types/pg the option is known (module resolution nodenext,
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

/**
 * The compilers the types are checked with: this repository's TypeScript (5.9, whose `tsc` its own
 * scripts use) and the current one, 7 (the native compiler), from test/pg/typescript7, a folder of
 * its own installed on first use (its `tsc` bin would take the root's place).
 */
const TYPESCRIPT7 = fileURLToPath(new URL('./typescript7', import.meta.url));
const COMPILERS: ReadonlyArray<readonly [string, () => Promise<string>]> = [
  [`TypeScript ${(createRequire(import.meta.url)('typescript/package.json') as { version: string }).version}`, async () => TSC],
  [
    `TypeScript ${folderDependencies(TYPESCRIPT7).typescript}`,
    async () => {
      await installedFolder(TYPESCRIPT7);
      return path.join(TYPESCRIPT7, 'node_modules/typescript/bin/tsc');
    },
  ],
];

function tsc(compiler: string, dir: string, config: string) {
  const run = spawnSync(process.execPath, [compiler, '-p', config], { cwd: dir, encoding: 'utf8', timeout: TSC_TIMEOUT_MS });
  return { status: run.status, output: run.stdout + run.stderr };
}

const errorLines = (output: string, file: string) => output.split('\n').filter((line) => line.startsWith(file));

/** The two projects, made once and checked by each compiler. */
let withTypes = '';
let withoutTypes = '';
beforeAll(() => {
  withTypes = packedProject(
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
  withoutTypes = packedProject(
    {
      'package.json': JSON.stringify({ name: 'app', private: true, type: 'module' }),
      'app.ts': NO_PG_TYPES,
      // Off, or an error inside leakwatch's own declarations would go unseen.
      'tsconfig.json': tsconfig('nodenext', ['app.ts'], false),
    },
    ['typescript', 'pg', '@types/node', 'prom-client'],
  );
  made.push(withTypes, withoutTypes);
}, 120_000);

describe.each(COMPILERS)("leakwatch's types › pg's PoolConfig, checked by %s", (_name, compilerOf) => {
  let compiler = '';
  beforeAll(async () => {
    compiler = await compilerOf();
  }, 120_000);

  describe('when the project has @types/pg', () => {
    /** tsc's run over app.ts and misspelt.ts (nodenext), made once for the two tests that read it. */
    let nodenext: ReturnType<typeof tsc> | undefined;
    const nodenextRun = () => (nodenext ??= tsc(compiler, withTypes, 'tsconfig.json'));

    it('accepts leakwatchName as a pool option (nodenext)', () => {
      const result = nodenextRun();
      expect(errorLines(result.output, 'app.ts')).toEqual([]);
      // The misspelt file's error is the only one.
      expect(result.output.trim().split('\n')).toHaveLength(1);
    }, TSC_TIMEOUT_MS);

    it('accepts leakwatchName as a pool option (bundler)', () => {
      const result = tsc(compiler, withTypes, 'tsconfig.bundler.json');
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
    it('type-checks, with skipLibCheck off', () => {
      const result = tsc(compiler, withoutTypes, 'tsconfig.json');
      expect(result.output).toBe('');
      expect(result.status).toBe(0);
    }, TSC_TIMEOUT_MS);
  });
});
