import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering the code keeps: core at the bottom (it imports nothing above it), the ledger a pure
 * state machine (no I/O, no protocol). Read from the sources' import statements.
 */

const SRC = path.resolve(__dirname, '../../src');

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2]);
}

/** The files `file` imports from src, transitively, and every module specifier seen on the way. */
function closure(file: string, files = new Set<string>(), specifiers = new Set<string>()): { files: Set<string>; specifiers: Set<string> } {
  if (files.has(file)) return { files, specifiers };
  files.add(file);
  for (const spec of importsOf(file)) {
    specifiers.add(spec);
    if (spec.startsWith('.')) closure(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')), files, specifiers);
  }
  return { files, specifiers };
}

const relative = (file: string) => path.relative(SRC, file).split(path.sep).join('/');

describe('layering', () => {
  it('the ledger imports nothing from http, pg, redis, metrics or report, and no module that does I/O', () => {
    const { files, specifiers } = closure(path.join(SRC, 'core/ledger.ts'));
    expect([...files].map(relative).sort()).toEqual(['core/clock.ts', 'core/deadline-queue.ts', 'core/deadline-timer.ts', 'core/held-list.ts', 'core/history.ts', 'core/ledger.ts', 'core/listeners.ts', 'core/records.ts']);
    expect([...specifiers].filter((s) => !s.startsWith('.'))).toEqual([]);
  });

  it('core imports only core and the configuration, never an adapter or an entry point above it', () => {
    const core = readdirSync(path.join(SRC, 'core')).filter((f) => f.endsWith('.ts'));
    for (const name of core) {
      const upward = importsOf(path.join(SRC, 'core', name)).filter((s) => s.startsWith('..') && s !== '../config.js');
      expect(upward, `src/core/${name}`).toEqual([]);
    }
  });

  it('the checks above can fail: an adapter file does import upward-looking modules', () => {
    expect(importsOf(path.join(SRC, 'pg/client.ts')).some((s) => s.startsWith('../core/'))).toBe(true);
  });
});
