import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import type { PgClientClass } from './internal-types.js';

/**
 * A copy of the app's own pg `Client`, evaluated privately, for leakwatch's pg_stat_activity reader.
 *
 * Why not the app's `Client`: everything on it is instrumented. The reader's queries would pass
 * through every wrapper there and be taken for the app's own: OpenTelemetry records them as root
 * spans, a patcher counts them, leakwatch's own instrumentation has to be told to skip them. Why
 * not a second `require()` of it: every agent watches `require()` (require-in-the-middle on
 * `Module.prototype.require`, others on `Module._load` or `Module.prototype._compile`), and
 * leakwatch's own module hook patches pg's client file wherever it loads.
 *
 * So pg's files are read and compiled here (`vm.compileFunction`, in this realm) and their
 * `require()` calls resolved as Node would (`Module._resolveFilename`) and loaded the same way, so
 * none of those hooks sees them; only Node's builtins (`net`, `tls`, `crypto`) come from the
 * ordinary require. The copy is made once per pg folder, when a first leak is confirmed; it never
 * enters `require.cache`, and its pg-types has none of the app's type parsers.
 */

type Exports = unknown;
interface PrivateModule {
  exports: Exports;
  readonly id: string;
  readonly filename: string;
  loaded: boolean;
  readonly paths: string[];
}

type ModuleInternals = typeof Module & {
  _cache: Record<string, NodeModule | undefined>;
  _resolveFilename(request: string, parent: { id: string; filename: string; paths: string[] }, isMain: boolean): string;
  _nodeModulePaths(from: string): string[];
};
const Internals = Module as ModuleInternals;

const builtinRequire: (id: string) => unknown =
  (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule ?? createRequire(path.join(process.cwd(), 'leakwatch-builtins.js'));

const CJS_PARAMETERS = ['exports', 'require', 'module', '__filename', '__dirname'];

/** Loads a tree of CommonJS files apart from Node's module system; one instance, one set of module instances. */
class PrivateLoader {
  private readonly modules = new Map<string, PrivateModule>();

  load(filename: string): Exports {
    const existing = this.modules.get(filename);
    if (existing !== undefined) return existing.exports; // a cycle, or a file two others require
    const module: PrivateModule = { exports: {}, id: filename, filename, loaded: false, paths: Internals._nodeModulePaths(path.dirname(filename)) };
    this.modules.set(filename, module);
    try {
      const extension = path.extname(filename);
      if (extension === '.json') {
        module.exports = JSON.parse(stripBom(readFileSync(filename, 'utf8')));
      } else if (extension === '.js' || extension === '.cjs') {
        const source = stripShebang(stripBom(readFileSync(filename, 'utf8')));
        const body = vm.compileFunction(source, CJS_PARAMETERS, { filename });
        body.call(module.exports, module.exports, this.requireFrom(module), module, filename, path.dirname(filename));
      } else {
        throw new Error(`leakwatch cannot load ${filename} privately (only CommonJS and JSON files)`);
      }
    } catch (error) {
      this.modules.delete(filename);
      throw error;
    }
    module.loaded = true;
    return module.exports;
  }

  private requireFrom(parent: PrivateModule): NodeJS.Require {
    const resolve = (request: string): string => (Module.isBuiltin(request) ? request : Internals._resolveFilename(request, parent, false));
    const require = (request: string): Exports => (Module.isBuiltin(request) ? builtinRequire(request) : this.load(resolve(request)));
    return Object.assign(require, {
      resolve: Object.assign(resolve, { paths: () => parent.paths }),
      cache: Object.create(null) as NodeJS.Dict<NodeModule>,
      main: undefined,
      extensions: Object.create(null) as NodeJS.RequireExtensions,
    }) as NodeJS.Require;
  }
}

function stripBom(source: string): string {
  return source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
}

function stripShebang(source: string): string {
  return source.startsWith('#!') ? '//' + source : source;
}

/** The file that defined `Client` (or the pg class it extends): pg's `lib/client.js` as the app loaded it. */
function clientFileOf(Client: Function): string | null {
  const byExports = new Map<unknown, string>();
  for (const [filename, module] of Object.entries(Internals._cache)) {
    if (module !== undefined && filename.endsWith('client.js')) byExports.set(module.exports, filename);
  }
  for (let C: unknown = Client; typeof C === 'function' && C !== Function.prototype; C = Object.getPrototypeOf(C)) {
    const filename = byExports.get(C);
    if (filename !== undefined) return filename;
  }
  return null;
}

const copies = new Map<string, PgClientClass>();
/** App classes whose copy could not be made: asked again, they fail at once with the same error. */
const failed = new WeakMap<Function, unknown>();

/**
 * A private `Client` of the same pg the app's `Client` comes from. Throws when that pg's file is
 * not to be found (a bundled app) or does not load outside Node's module system.
 */
export function privateClientClass(appClient: Function): PgClientClass {
  if (failed.has(appClient)) throw failed.get(appClient);
  try {
    let filename = clientFileOf(appClient);
    if (filename === null) throw new Error("no pg lib/client.js in require.cache holds the app's Client (a bundled app?)");
    // pg.native's Client: the reader uses the JavaScript one beside it (no native addon to load).
    if (/[\\/]lib[\\/]native[\\/]client\.js$/.test(filename)) filename = path.join(path.dirname(filename), '..', 'client.js');
    let Client = copies.get(filename);
    if (Client === undefined) {
      Client = new PrivateLoader().load(filename) as PgClientClass;
      if (typeof Client !== 'function') throw new Error(`${filename} did not export pg's Client`);
      copies.set(filename, Client);
    }
    return Client;
  } catch (error) {
    failed.set(appClient, error);
    throw error;
  }
}
