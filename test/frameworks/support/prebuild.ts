/**
 * vitest globalSetup: starts the builds of the framework apps at once, one after the other in the
 * background, when the run includes their tests. vitest runs one test file at a time on this
 * 2-core machine, so a build (next build is the slowest step of the suite) takes the idle core
 * while other files run, instead of making its test file wait. A test file that needs an app
 * waits for its build (app-build.mts locks each one) or reuses it.
 */
import path from 'node:path';
import type { AppBuild } from './app-build.mjs';
import { ROOT } from './app-build.mjs';
import { nestApp, nextApp, nextBundledPgApp } from './apps.js';

/** The command line's file filters, as vitest matches them: substrings of the test files' paths. */
function selects(file: string): boolean {
  const filters = process.argv
    .slice(2)
    .filter((arg, i, args) => !arg.startsWith('-') && !['run', 'watch', 'related'].includes(arg) && !/^-(t|-testNamePattern|-reporter|-outputFile.*|-project|-config|c)$/.test(args[i - 1] ?? ''));
  return filters.length === 0 || filters.some((filter) => file.includes(path.isAbsolute(filter) ? path.relative(ROOT, filter) : filter));
}

export default function setup(): () => Promise<void> {
  const builds: Array<() => Promise<AppBuild>> = [];
  if (selects('test/frameworks/nest.test.ts')) builds.push(nestApp);
  if (selects('test/frameworks/next.test.ts')) builds.push(() => nextApp('next15'), () => nextApp('next'), nextBundledPgApp);
  // A failed build is reported by the test that needs it, which tries again and shows the output.
  const done = builds.reduce<Promise<unknown>>((previous, build) => previous.then(build).catch(() => undefined), Promise.resolve());
  return async () => {
    await done;
  };
}
