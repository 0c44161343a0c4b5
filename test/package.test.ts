import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/cli.js';

interface Manifest {
  repository?: { url?: string };
  homepage?: string;
  scripts: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;

/** The files `npm pack` would put in the tarball (scripts skipped: dist/ is the one `npm test` built). */
function packedFiles(cwd: string, ignoreScripts = true): string[] {
  const args = ['pack', '--dry-run', '--json', ...(ignoreScripts ? ['--ignore-scripts'] : [])];
  const out = execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (JSON.parse(out.slice(out.indexOf('[')))[0].files as Array<{ path: string }>).map((f) => f.path);
}

const majorsOf = (range: string) => [...range.matchAll(/\^(\d+)\./g)].map((m) => Number(m[1])).sort();

describe('the published package', () => {
  let files: string[];
  beforeAll(() => {
    files = packedFiles(ROOT);
  });

  it('ships the build, the schema, the dashboards and the demo app', () => {
    for (const file of ['dist/index.js', 'dist/register.js', 'dist/cli/main.js', 'dist/vitest/index.mjs', 'schema/report.schema.json', 'fixtures/demo-app.mjs']) {
      expect(files).toContain(file);
    }
  });

  it('ships no source map that points at a file it does not ship, unless the map carries the source', () => {
    const maps = files.filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(path.join(ROOT, map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      sources.forEach((source, i) => {
        const shipped = files.includes(path.posix.join(path.posix.dirname(map), source));
        expect(shipped || typeof sourcesContent?.[i] === 'string', `${map} → ${source}`).toBe(true);
      });
    }
  });

  it('names its repository and home page', () => {
    expect(manifest.repository?.url).toMatch(/github\.com\/leakwatch\/leakwatch/);
    expect(manifest.homepage).toMatch(/^https:\/\/github\.com\/leakwatch\/leakwatch/);
  });

  it('links from its README only to files it ships or to absolute addresses, so the links work on the package page', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const relative = [...readme.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)].map((m) => m[1]).filter((target) => !/^[a-z]+:/.test(target));
    for (const target of relative) expect(files, `README links to ${target}`).toContain(target);
  });

  it('claims for each peer dependency exactly the majors this repository tests', () => {
    // The root's dev dependencies, and the packages of the test folders that hold what the root
    // cannot (test/support/installed-folder.ts: vitest 5, the agents).
    const folders = execFileSync('git', ['ls-files', 'test/**/package.json'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    const installed = folders.flatMap((file) => Object.entries((JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {}));
    expect(folders).toContain('test/vitest/vitest5/package.json');
    for (const [name, range] of Object.entries(manifest.peerDependencies)) {
      const tested = [...Object.entries(manifest.devDependencies), ...installed]
        .filter(([dev, version]) => dev === name || version.startsWith(`npm:${name}@`))
        .map(([, version]) => Number(/(\d+)\.\d+\.\d+/.exec(version)![1]));
      expect(majorsOf(range), name).toEqual([...new Set(tested)].sort());
    }
  });

  describe('when packed from a fresh clone, with no dist/ yet', () => {
    it('builds dist/ before packing (prepack) and ships it', () => {
      const clone = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-clone-'));
      const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const file of tracked) {
        if (!existsSync(path.join(ROOT, file))) continue;
        mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
        copyFileSync(path.join(ROOT, file), path.join(clone, file));
      }
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
      expect(existsSync(path.join(clone, 'dist'))).toBe(false);
      const packed = packedFiles(clone, false);
      expect(packed).toContain('dist/index.js');
      expect(packed).toContain('dist/cli/main.js');
    }, 120_000);
  });
});
