import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture, leakwatch } from '../support/cli.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-output-paths-'));
});

describe('leakwatch run output paths', () => {
  describe.each([
    ['--report', '/etc/passwd/r.json', '/etc/passwd is not a directory'],
    ['--junit', '/etc/passwd/sub/r.xml', '/etc/passwd is not a directory'],
    ['--report', 'A_DIRECTORY', 'it is a directory'],
    ['--report', '/sys/leakwatch/r.json', 'no file can be created in /sys'],
    ['--junit', '/proc/nope/r.xml', 'no file can be created in /proc'],
    ['--html', '/etc/passwd/r.html', '/etc/passwd is not a directory'],
    ['--summary-md', 'A_DIRECTORY', 'it is a directory'],
  ])('when %s %s cannot be written', (flag, given, reason) => {
    it('is a usage error naming the flag and the reason, and the command does not run', async () => {
      const file = given === 'A_DIRECTORY' ? dir : given;
      const marker = path.join(dir, `ran-${flag}-${path.basename(given)}`);
      const exit = await leakwatch(['run', flag, file, '--', process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`], {
        timeoutMs: 10_000,
      });
      expect(exit.status).toBe(2);
      const lines = exit.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0].startsWith(`leakwatch: ${flag} ${file} cannot be written: ${reason}`), lines[0]).toBe(true);
      expect(lines[0]).toMatch(/; choose another path\.$/);
      expect(existsSync(marker), 'the command ran').toBe(false);
    });
  });

  describe('when the folders of the report do not exist yet', () => {
    it('makes them and writes the report there', async () => {
      const file = path.join(dir, 'new', 'deeper', 'r.json');
      const exit = await leakwatch(['run', '--report', file, '--', process.execPath, '-e', '0']);
      expect(exit.status, exit.stderr).toBe(0);
      expect(existsSync(file)).toBe(true);
    });
  });

  describe('when writing the report fails after the command ran', () => {
    it("prints the summary anyway and exits with the command's status, not leakwatch's own failure", async () => {
      const folder = path.join(dir, 'replaced');
      mkdirSync(folder);
      // The command replaces the report's folder by a file, so the write at the end fails.
      const command = `const fs = require('node:fs'); fs.rmSync(${JSON.stringify(folder)}, { recursive: true }); fs.writeFileSync(${JSON.stringify(folder)}, ''); process.exit(3)`;
      const exit = await leakwatch(['run', '--report', path.join(folder, 'r.json'), '--response-threshold', '300ms', '--', process.execPath, '-e', command]);
      expect(exit.status).toBe(3);
      expect(exit.stderr).toContain(`could not write --report ${path.join(folder, 'r.json')} (ENOTDIR)`);
      expect(exit.stderr).toMatch(/leakwatch: \d+ responses? \(/);
    });

    it('exits with the leak status when the command succeeded', async () => {
      const folder = path.join(dir, 'replaced-leaky');
      mkdirSync(folder);
      const wrapper = `const fs = require('node:fs'); require('node:child_process').spawnSync(process.execPath, [${JSON.stringify(fixture('never-answers.mjs'))}], { stdio: 'inherit' }); fs.rmSync(${JSON.stringify(folder)}, { recursive: true }); fs.writeFileSync(${JSON.stringify(folder)}, '')`;
      const exit = await leakwatch(['run', '--junit', path.join(folder, 'r.xml'), '--response-threshold', '300ms', '--', process.execPath, '-e', wrapper]);
      expect(exit.status).toBe(1);
      expect(exit.stderr).toContain('1 leaked response');
    });
  });
});
