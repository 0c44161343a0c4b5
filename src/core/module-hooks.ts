import { readFileSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { logFailure } from './guard.js';
import { defineAccessor, install, undoAll, type Undo } from './patch.js';
import { shared } from './state.js';

/**
 * Patches CommonJS files of the app's own dependencies as they finish loading, wherever they
 * resolve from and however they are reached: `require()`, an ES `import` of a CommonJS package, or
 * a deep path (`ioredis/built/Redis.js`) that skips the package's entry.
 *
 * Node marks a module loaded (`module.loaded = true`) right after its code ran and before
 * `require()` returns. leakwatch sees that assignment through an accessor on `Module.prototype`,
 * so nothing of leakwatch is on the stack while a module's code runs: errors thrown at load keep
 * their stacks exactly. The cost is one suffix test per module loaded, never per `require()` call.
 * Modules loaded before the hook are patched from `require.cache` when it is installed.
 */
export interface ModulePatch {
  /** The package's name, as in its package.json (`pg`, `@redis/client`). */
  package: string;
  /** The file inside the package, with forward slashes: `lib/client.js`. */
  file: string;
  /** The majors of the package this patch knows; another version is skipped with one warning. */
  majors: readonly number[];
  /** Patches the file's exports; may return a function that undoes it. */
  patch(exports: unknown, filename: string): Undo | void;
  /**
   * The library a report names when this file loads, whatever its version (`pg`, `ioredis`,
   * `redis`): a process that loaded it but whose connections leakwatch never saw can then be told
   * apart from one that made none (see {@link loadedLibraries}).
   */
  library?: string;
}

interface Hooks {
  patches: Set<ModulePatch>;
  undos: Map<ModulePatch, Undo[]>;
}

const hooks = shared<Hooks>('moduleHooks', () => ({ patches: new Set(), undos: new Map() }));
/** package.json name and version of a package folder, read once per folder. */
const manifests = shared('packageManifests', () => new Map<string, { name?: string; version?: string } | null>());
/** Warnings already given, so each is given once. */
const warned = shared('moduleHookWarnings', () => new Set<string>());
/** The `library` of every patched file seen loading, supported version or not. */
const libraries = shared('loadedLibraries', () => new Set<string>());

/** Libraries (a ModulePatch's `library`) this process has loaded since a hook was installed, sorted. */
export function loadedLibraries(): string[] {
  return [...libraries].sort();
}

const kLoaded = Symbol('leakwatch.moduleLoaded');
type Loading = NodeModule & { [kLoaded]?: boolean };

function manifestOf(folder: string): { name?: string; version?: string } | null {
  let manifest = manifests.get(folder);
  if (manifest === undefined) {
    try {
      manifest = JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
    } catch {
      manifest = null;
    }
    manifests.set(folder, manifest);
  }
  return manifest;
}

/** The package folder if `filename` is `patch.file` of `patch.package` (an npm alias's folder name included). */
function packageFolder(filename: string, patch: ModulePatch): string | null {
  const normalized = path.sep === '/' ? filename : filename.split(path.sep).join('/');
  if (!normalized.endsWith('/' + patch.file)) return null;
  const folder = normalized.slice(0, normalized.length - patch.file.length - 1);
  if (folder.endsWith('/' + patch.package)) return folder;
  // An npm alias (`ioredis6` for ioredis): only for files distinctive enough to be worth a read.
  if (!patch.file.includes('/')) return null;
  return manifestOf(folder)?.name === patch.package ? folder : null;
}

function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  logFailure('instrumenting a module', new Error(message));
}

function apply(patch: ModulePatch, exports: unknown, filename: string): void {
  try {
    if (exports === null || (typeof exports !== 'object' && typeof exports !== 'function')) return;
    const folder = packageFolder(filename, patch);
    if (folder === null) return;
    if (patch.library !== undefined) libraries.add(patch.library);
    const version = manifestOf(folder)?.version;
    const major = version === undefined ? NaN : Number.parseInt(version, 10);
    if (!patch.majors.includes(major)) {
      warnOnce(
        `${patch.package} ${version ?? '(unknown version)'} at ${folder} is not instrumented: leakwatch supports ${patch.majors.map((m) => `${m}.x`).join(', ')}`,
      );
      return;
    }
    const undo = patch.patch(exports, filename);
    if (typeof undo === 'function') hooks.undos.get(patch)?.push(undo);
  } catch (error) {
    logFailure(`instrumenting ${patch.package}/${patch.file}`, error);
  }
}

function loaded(module: NodeModule): void {
  const filename = module.filename;
  if (typeof filename !== 'string') return;
  for (const patch of hooks.patches) apply(patch, module.exports, filename);
}

/**
 * `module.loaded` while a module loads: an accessor of the instance's own, made when the Module
 * constructor sets it false, and turned back into the plain property Node made when the loader
 * sets it true, so a loaded module looks exactly as it would without leakwatch.
 */
function ownLoaded(this: Loading): boolean {
  return this[kLoaded] === true;
}

function setOwnLoaded(this: Loading, value: unknown): void {
  if (value === true) {
    Object.defineProperty(this, 'loaded', { value: true, writable: true, enumerable: true, configurable: true });
    delete this[kLoaded];
    loaded(this);
  } else {
    this[kLoaded] = Boolean(value);
  }
}

function installHook(): Undo {
  const proto = Module.prototype as unknown as object;
  return defineAccessor(proto, 'loaded', {
    get() {
      return undefined; // Module.prototype itself: instances answer with their own property
    },
    set(this: Loading, value: unknown) {
      // The Module constructor's `this.loaded = false`: from here on the instance answers itself.
      Object.defineProperty(this, 'loaded', { get: ownLoaded, set: setOwnLoaded, enumerable: true, configurable: true });
      setOwnLoaded.call(this, value);
    },
  });
}

/**
 * Applies `patch` to its file now if loaded, and to every copy loaded later. The returned function
 * stops that and undoes every application whose patch returned an undo.
 */
export function onModuleLoad(patch: ModulePatch): Undo {
  const releaseHook = install(Module.prototype as unknown as object, 'leakwatch module hooks', installHook);
  hooks.patches.add(patch);
  hooks.undos.set(patch, []);
  const cache = (Module as unknown as { _cache: Record<string, NodeModule | undefined> })._cache;
  for (const [filename, mod] of Object.entries(cache)) {
    if (mod !== undefined && mod.loaded) apply(patch, mod.exports, filename);
  }
  return () => {
    if (!hooks.patches.delete(patch)) return;
    const undos = hooks.undos.get(patch) ?? [];
    hooks.undos.delete(patch);
    undoAll(undos, `undoing the patch of ${patch.package}/${patch.file}`)();
    releaseHook();
  };
}
