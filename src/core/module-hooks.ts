import Module from 'node:module';
import path from 'node:path';
import { logFailure } from './guard.js';

/**
 * Patches CommonJS modules of the app's own dependencies as they load, wherever they resolve from.
 *
 * It hooks `Module.prototype._compile`, which every CommonJS module passes through whether it is
 * reached by `require()` or by an ES `import` of a CommonJS package, so the cost is one suffix test
 * per module loaded, never per `require()` call. Modules loaded before the hook are patched from
 * `require.cache` when the hook is installed.
 */
export interface ModulePatch {
  /** A path suffix inside a package, with forward slashes: `pg/lib/index.js`. */
  file: string;
  /** Patches the module's exports; may return a function that undoes it. */
  patch(exports: unknown, filename: string): void | (() => void);
}

type Compile = (this: NodeModule, content: string, filename: string) => unknown;
type Hooks = { patches: ModulePatch[]; original: Compile; undos: Map<ModulePatch, Array<() => void>> };

const HOOKS = Symbol.for('leakwatch.moduleHooks.v1');
const holder = globalThis as unknown as { [HOOKS]?: Hooks };
const proto = (Module as unknown as { prototype: { _compile: Compile } }).prototype;

function matches(filename: string, file: string): boolean {
  const normalized = path.sep === '/' ? filename : filename.split(path.sep).join('/');
  return normalized.endsWith('/' + file);
}

// Patches are idempotent themselves (a Symbol marks what is patched), so applying twice is harmless.
function apply(hooks: Hooks, patch: ModulePatch, exports: unknown, filename: string): void {
  if (exports === null || (typeof exports !== 'object' && typeof exports !== 'function')) return;
  try {
    const undo = patch.patch(exports, filename);
    if (typeof undo === 'function') hooks.undos.get(patch)?.push(undo);
  } catch (error) {
    logFailure(`patching ${patch.file}`, error);
  }
}

function install(): Hooks {
  const existing = holder[HOOKS];
  if (existing !== undefined) return existing;
  const hooks: Hooks = { patches: [], original: proto._compile, undos: new Map() };
  proto._compile = function (this: NodeModule, content: string, filename: string) {
    const result = hooks.original.call(this, content, filename);
    for (const patch of hooks.patches) if (matches(filename, patch.file)) apply(hooks, patch, this.exports, filename);
    return result;
  };
  holder[HOOKS] = hooks;
  return hooks;
}

/**
 * Applies `patch` to the module now if loaded, and to every copy loaded later. The returned
 * function stops that and undoes every application whose patch returned an undo.
 */
export function onModuleLoad(patch: ModulePatch): () => void {
  const hooks = install();
  hooks.patches.push(patch);
  hooks.undos.set(patch, []);
  const cache = (Module as unknown as { _cache: Record<string, NodeModule | undefined> })._cache;
  for (const [filename, mod] of Object.entries(cache)) {
    if (mod !== undefined && mod.loaded && matches(filename, patch.file)) apply(hooks, patch, mod.exports, filename);
  }
  return () => {
    const i = hooks.patches.indexOf(patch);
    if (i >= 0) hooks.patches.splice(i, 1);
    for (const undo of hooks.undos.get(patch)?.reverse() ?? []) {
      try {
        undo();
      } catch (error) {
        logFailure(`undoing the patch of ${patch.file}`, error);
      }
    }
    hooks.undos.delete(patch);
    if (hooks.patches.length === 0 && holder[HOOKS] === hooks) {
      proto._compile = hooks.original;
      delete holder[HOOKS];
    }
  };
}
