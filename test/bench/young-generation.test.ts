import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../metrics/support/tools.js';

// bench/young-generation.mjs, the command the README gives for its RSS figures: a short run of it
// against the real PostgreSQL and Redis, and its answers to bad flags.
const SCRIPT = fileURLToPath(new URL('../../bench/young-generation.mjs', import.meta.url));

const run = (args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('bench/young-generation.mjs', () => {
  it('loads a bare and a leakwatch server and reads each one’s young generation, heap and RSS, chunk by chunk', () => {
    requireBuild();
    const result = run(['--requests=2000', '--chunk=1000']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const rows = result.stdout.split('\n').filter((line) => /^\| \d+ \|/.test(line));
    expect(rows.map((row) => row.split('|')[1].trim())).toEqual(['1000', '2000']);
    // Six readings a row, each a whole number of MB above 0.
    for (const row of rows) {
      const cells = row.split('|').slice(2, 8).map((cell) => Number(cell.trim()));
      expect(cells.every((mb) => Number.isInteger(mb) && mb > 0), row).toBe(true);
      expect(cells).toHaveLength(6);
    }
    expect(result.stdout).toMatch(/^bare: new space reached \d+ MB by (1000|2000) requests\.$/m);
    expect(result.stdout).toMatch(/^leakwatch: new space reached \d+ MB by (1000|2000) requests\.$/m);
    expect(result.stdout).toMatch(/^(With both at \d+ MB of new space \(\d readings?\), median RSS: bare \d+ MB, leakwatch \d+ MB\.|The two never had the same new space at once: .*)$/m);
  }, 60_000);

  it('stops with its usage and exit status 2 on a flag it does not take or a chunk larger than the run', () => {
    const unknown = run(['--rounds=3']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown argument "--rounds=3"\nusage: node bench\/young-generation\.mjs/);
    const chunk = run(['--requests=1000', '--chunk=5000']);
    expect(chunk.status).toBe(2);
    expect(chunk.stderr).toMatch(/^--chunk \(5000\) must be at most --requests \(1000\)\n/);
    expect(chunk.stdout).toBe('');
  });
});
