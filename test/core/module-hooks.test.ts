import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onModuleLoad } from '../../src/core/module-hooks.js';

function fakePackage(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-hooks-'));
  const file = path.join(dir, 'node_modules', name, 'lib', 'index.js');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, 'module.exports = { greet() { return "hello"; } };\n');
  return file;
}

describe('onModuleLoad(patch)', () => {
  it('patches every copy as it loads and, on undo, undoes each application', () => {
    const first = fakePackage('fakelib');
    const second = fakePackage('fakelib');
    const seen: string[] = [];
    const stop = onModuleLoad({
      file: 'fakelib/lib/index.js',
      patch(exports, filename) {
        seen.push(filename);
        const lib = exports as { greet: () => string };
        const original = lib.greet;
        lib.greet = () => 'patched';
        return () => void (lib.greet = original);
      },
    });
    const a = createRequire(first)(first) as { greet: () => string };
    const b = createRequire(second)(second) as { greet: () => string };
    expect([a.greet(), b.greet()]).toEqual(['patched', 'patched']);
    expect(seen).toEqual([first, second]);
    stop();
    expect([a.greet(), b.greet()]).toEqual(['hello', 'hello']);
  });

  it('patches a module that was loaded before the hook, and survives a patch that throws', () => {
    const file = fakePackage('earlylib');
    const early = createRequire(file)(file) as { greet: () => string };
    const stop = onModuleLoad({ file: 'earlylib/lib/index.js', patch: (exports) => void ((exports as { greet: () => string }).greet = () => 'late patch') });
    expect(early.greet()).toBe('late patch');
    const failing = onModuleLoad({ file: 'brokenlib/lib/index.js', patch: () => { throw new Error('patch failed'); } });
    const broken = fakePackage('brokenlib');
    expect((createRequire(broken)(broken) as { greet: () => string }).greet()).toBe('hello');
    stop();
    failing();
  });
});
