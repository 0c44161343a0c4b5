// Runs one bench section (bench/<name>.bench.mjs) under the Node that runs this file, for
// bench/run.mjs, which forks it with each Node line's binary: the section's servers (fork()) and
// load processes (process.execPath) then run on that Node too. The result goes back over IPC:
// {result: {markdown, figures, seconds}} or {error}. Progress lines go to stderr, tagged with the line.
//   argv: FILE (e.g. realistic.bench.mjs); BENCH_OPTIONS (JSON, {name: options}) overrides run()'s options.
const [file] = process.argv.slice(2);
const name = file.replace(/\.bench\.mjs$/, '');
const tag = `[node ${process.versions.node.split('.')[0]}]`;
const log = (line) => process.stderr.write(`${tag} ${line}\n`);

function send(message) {
  return new Promise((resolve) => process.send(message, () => resolve()));
}

let code = 0;
try {
  const options = JSON.parse(process.env.BENCH_OPTIONS || '{}')[name] ?? {};
  const module = await import(new URL(`../${file}`, import.meta.url));
  const started = Date.now();
  const result = await module.run({ ...options, log });
  const seconds = (Date.now() - started) / 1000;
  await send({ result: { markdown: typeof result === 'string' ? result : result.markdown, figures: typeof result === 'object' ? (result.figures ?? null) : null, seconds } });
} catch (error) {
  code = 1;
  await send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
}
// A section that leaves a handle open (a pool, a timer) must not keep the run waiting.
process.exit(code);
