import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onModuleLoad, type ModulePatch } from '../../src/core/module-hooks.js';
import { setFailureLog } from '../../src/core/guard.js';

const logged: string[] = [];
beforeAll(() => setFailureLog((line) => logged.push(line)));
afterAll(() => setFailureLog((line) => process.stderr.write(`${line}\n`)));

/** A package in a node_modules folder of its own: `folder` is its folder's name (an npm alias when it differs from `name`). */
function fakePackage(name: string, options: { version?: string; folder?: string; source?: string } = {}): { root: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-hooks-'));
  const root = path.join(dir, 'node_modules', options.folder ?? name);
  mkdirSync(path.join(root, 'lib'), { recursive: true });
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name, version: options.version ?? '1.2.3', main: 'lib/index.js' }));
  writeFileSync(path.join(root, 'lib', 'greeter.js'), options.source ?? 'module.exports = { greet() { return "hello"; } };\n');
  writeFileSync(path.join(root, 'lib', 'index.js'), "module.exports = require('./greeter.js');\n");
  return { root, file: path.join(root, 'lib', 'index.js') };
}

type Greeter = { greet: () => string };

function greeterPatch(name: string, seen: string[] = []): ModulePatch {
  return {
    package: name,
    file: 'lib/greeter.js',
    majors: [1],
    patch(exports, filename) {
      seen.push(filename);
      const lib = exports as Greeter;
      const original = lib.greet;
      lib.greet = () => 'patched';
      return () => void (lib.greet = original);
    },
  };
}

describe('onModuleLoad(patch)', () => {
  it('patches every copy as it loads and, on undo, undoes each application', () => {
    const first = fakePackage('fakelib');
    const second = fakePackage('fakelib');
    const seen: string[] = [];
    const stop = onModuleLoad(greeterPatch('fakelib', seen));
    const a = createRequire(first.file)(first.file) as Greeter;
    const b = createRequire(second.file)(second.file) as Greeter;
    expect([a.greet(), b.greet()]).toEqual(['patched', 'patched']);
    expect(seen).toEqual([path.join(first.root, 'lib', 'greeter.js'), path.join(second.root, 'lib', 'greeter.js')]);
    stop();
    expect([a.greet(), b.greet()]).toEqual(['hello', 'hello']);
  });

  it('patches a file reached by a deep path, and in a folder named by an npm alias', () => {
    const deep = fakePackage('deeplib');
    const aliased = fakePackage('aliaslib', { folder: 'aliaslib6' });
    const stopDeep = onModuleLoad(greeterPatch('deeplib'));
    const stopAlias = onModuleLoad(greeterPatch('aliaslib'));
    const greeter = path.join(deep.root, 'lib', 'greeter.js');
    expect((createRequire(greeter)(greeter) as Greeter).greet()).toBe('patched');
    expect((createRequire(aliased.file)(aliased.file) as Greeter).greet()).toBe('patched');
    stopDeep();
    stopAlias();
  });

  it('patches a module that was loaded before the hook, and survives a patch that throws', () => {
    const early = fakePackage('earlylib');
    const lib = createRequire(early.file)(early.file) as Greeter;
    const stop = onModuleLoad({ ...greeterPatch('earlylib'), patch: (exports) => void ((exports as Greeter).greet = () => 'late patch') });
    expect(lib.greet()).toBe('late patch');
    const failing = onModuleLoad({
      ...greeterPatch('brokenlib'),
      patch: () => {
        throw new Error('patch failed');
      },
    });
    const broken = fakePackage('brokenlib');
    expect((createRequire(broken.file)(broken.file) as Greeter).greet()).toBe('hello');
    expect(logged.some((line) => line.includes('instrumenting brokenlib/lib/greeter.js failed') && line.includes('patch failed'))).toBe(true);
    stop();
    failing();
  });

  it('leaves a version outside the majors it knows alone, and says so once', () => {
    const stop = onModuleLoad(greeterPatch('newlib'));
    const one = fakePackage('newlib', { version: '2.0.0' });
    const two = fakePackage('newlib', { version: '2.0.0' });
    expect((createRequire(one.file)(one.file) as Greeter).greet()).toBe('hello');
    expect((createRequire(two.file)(two.file) as Greeter).greet()).toBe('hello');
    const warnings = logged.filter((line) => line.includes('newlib 2.0.0'));
    expect(warnings).toHaveLength(2); // one per copy (each its own folder), not one per load
    expect(warnings[0]).toMatch(/is not instrumented: leakwatch supports 1\.x/);
    stop();
  });

  it('keeps the stack of an error thrown while a module loads exactly as without the hook', () => {
    const source = 'throw new Error("broken at load");\n';
    const stackOf = (file: string): string => {
      try {
        createRequire(file)(file);
      } catch (error) {
        return (error as Error).stack!.replace(/leakwatch-hooks-[^/]+/g, 'DIR');
      }
      throw new Error('did not throw');
    };
    const bare = fakePackage('throwinglib', { source });
    const without = stackOf(bare.file);
    const stop = onModuleLoad(greeterPatch('throwinglib'));
    const hooked = fakePackage('throwinglib', { source });
    const withHook = stackOf(hooked.file);
    stop();
    expect(withHook).toBe(without);
    expect(withHook).not.toMatch(/module-hooks/);
  });
});
