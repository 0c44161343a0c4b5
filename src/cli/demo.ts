/** `leakwatch demo`: the full demo arrives with its own issue; until then it says so plainly. */
export async function demo(_args: string[]): Promise<number> {
  process.stdout.write(
    'leakwatch demo is coming: the one-command demo (a leaky app with pg and Redis, driven traffic and the report)\n' +
      'is not built yet. Meanwhile: leakwatch run --response-threshold 300ms -- node fixtures/express-error-reporter.mjs\n',
  );
  return 0;
}
