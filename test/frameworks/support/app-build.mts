/**
 * Fixture apps built as their framework's docs say (`next build`, `tsc`), once per content: a
 * build is kept in `.cache/apps/` (git-ignored), keyed on the fixture's files, the framework
 * packages' versions and the build command, and reused by later runs and by every Node line of
 * .ci/run. Only node: imports, so that `node test/frameworks/support/app-build.mts` (Node 24) can
 * build ahead of a test run.
 *
 * Each app gets a node_modules of its own, hard links to the packages of the repository's
 * node_modules (an npm alias such as `next15` laid out as `next`), so that the framework sees a
 * plain project: Turbopack and standalone output refuse or misplace files outside the app's root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CACHE = path.join(ROOT, '.cache', 'apps');

export interface AppSpec {
  /** The folder under fixtures/. */
  fixture: string;
  /** Distinguishes builds of one fixture with other packages (`next15`, `next16`). */
  label: string;
  /**
   * Packages of the app, by the name the app imports, from the repository's node_modules folder
   * named by the value; `.` is leakwatch itself (its built dist/).
   */
  packages: Record<string, string>;
  /** The build, run in the app's folder: [command, ...args]. */
  build: string[];
  /** Files the build must leave, relative to the app: checked before a build is taken as done. */
  expect: string[];
}

export interface AppBuild {
  dir: string;
  /** Seconds the build took, or null when an earlier build was reused. */
  buildSeconds: number | null;
  /** What the build printed (empty when reused). */
  output: string;
}

function filesOf(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === '.next' || entry.name === 'dist' ? [] : filesOf(full, base);
      return [path.relative(base, full)];
    })
    .sort();
}

/** leakwatch itself, as the app installs it: what `files` of its package.json names, built. */
const SELF = '.';
const SELF_FILES = ['package.json', 'dist', 'schema'];

function versionOf(folder: string): string {
  if (folder === SELF) {
    const hash = createHash('sha256');
    for (const file of filesOf(path.join(ROOT, 'dist'))) hash.update(readFileSync(path.join(ROOT, 'dist', file)));
    return hash.digest('hex');
  }
  return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', folder, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The cache key: the fixture's files, the packages it gets and their versions, the build command. */
function keyOf(spec: AppSpec): string {
  const hash = createHash('sha256');
  const source = path.join(ROOT, 'fixtures', spec.fixture);
  for (const file of filesOf(source)) hash.update(file).update('\0').update(readFileSync(path.join(source, file))).update('\0');
  for (const [name, folder] of Object.entries(spec.packages).sort()) hash.update(`${name}=${folder}@${versionOf(folder)}\0`);
  hash.update(spec.build.join(' '));
  return hash.digest('hex').slice(0, 16);
}

interface Manifest {
  bin?: string | Record<string, string>;
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** Where Node would find `name` from the package at `from`: the first node_modules/name above it. */
function resolvePackage(name: string, from: string): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

function hardLinkTree(from: string, to: string): void {
  mkdirSync(path.dirname(to), { recursive: true });
  const copy = spawnSync('cp', ['-al', from, to], { encoding: 'utf8' });
  if (copy.status !== 0) throw new Error(`cp -al ${from} ${to}: ${copy.stderr}`);
}

/**
 * Lays out `packages` and everything they depend on (optional dependencies that are installed,
 * required peers) in `app`/node_modules, hoisted where the names do not clash.
 */
function layPackages(app: string, packages: Record<string, string>): void {
  const top = new Map<string, string>(); // name at app/node_modules → real folder
  const place = (name: string, real: string, parent: string | null): void => {
    const atTop = top.get(name);
    if (atTop === real) return;
    let target: string;
    if (atTop === undefined) {
      target = path.join(app, 'node_modules', name);
      top.set(name, real);
    } else {
      // Another version holds the name: this one goes beside the package that needs it.
      if (parent === null) throw new Error(`${name} is asked for twice`);
      target = path.join(parent, 'node_modules', name);
      if (existsSync(target)) return;
    }
    hardLinkTree(real, target);
    const manifest = JSON.parse(readFileSync(path.join(real, 'package.json'), 'utf8')) as Manifest;
    const peers = Object.keys(manifest.peerDependencies ?? {}).filter((peer) => manifest.peerDependenciesMeta?.[peer]?.optional !== true);
    for (const dep of new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...peers])) {
      const found = resolvePackage(dep, real);
      if (found === null) continue; // an optional dependency for another platform
      // Found inside this package's own node_modules: the hard-linked tree has it already.
      if (found.startsWith(real + path.sep)) continue;
      place(dep, realpathSync(found), target);
    }
  };
  for (const [name, folder] of Object.entries(packages)) {
    if (folder === SELF) for (const file of SELF_FILES) hardLinkTree(path.join(ROOT, file), path.join(app, 'node_modules', name, file));
    else place(name, realpathSync(path.join(ROOT, 'node_modules', folder)), null);
  }
  linkBins(app, Object.keys(packages));
}

/** node_modules/.bin of the app's own packages, as npm makes it: `npm run build` finds `next` and `tsc` there. */
function linkBins(app: string, names: string[]): void {
  const bin = path.join(app, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  for (const name of names) {
    const manifest = JSON.parse(readFileSync(path.join(app, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
    const bins = typeof manifest.bin === 'string' ? { [name.split('/').pop()!]: manifest.bin } : (manifest.bin ?? {});
    for (const [command, file] of Object.entries(bins)) symlinkSync(path.join('..', name, file), path.join(bin, command));
  }
}

function run(command: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // npm and the tools' `#!/usr/bin/env node` run on the Node of this test run.
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, NEXT_TELEMETRY_DISABLED: '1' };
    // The build is not the app under test: no leakwatch, no test runner hooks.
    delete env.NODE_OPTIONS;
    delete env.LEAKWATCH_REPORT_DIR;
    const child = spawn(command[0], command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, output }));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** One builder per app folder at a time (test files run in parallel processes). */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  mkdirSync(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try {
        holder = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        // being written
      }
      if (Number.isInteger(holder) && !alive(holder)) rmSync(lock, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Builds of the same fixture and label with another key: outdated, removed so the cache stays small. */
function removeOutdated(spec: AppSpec, keep: string): void {
  if (!existsSync(CACHE)) return;
  const prefix = `${spec.fixture}-${spec.label}-`;
  for (const name of readdirSync(CACHE)) {
    if (name.startsWith(prefix) && !name.endsWith('.lock') && path.join(CACHE, name) !== keep && !existsSync(path.join(CACHE, `${name}.lock`))) {
      rmSync(path.join(CACHE, name), { recursive: true, force: true });
    }
  }
}

/** The app built from `spec`, from the cache when that build was done before. */
export async function buildApp(spec: AppSpec): Promise<AppBuild> {
  const dir = path.join(CACHE, `${spec.fixture}-${spec.label}-${keyOf(spec)}`);
  const done = path.join(dir, '.leakwatch-build.json');
  return withLock(dir, async () => {
    if (existsSync(done) && spec.expect.every((file) => existsSync(path.join(dir, file)))) {
      return { dir, buildSeconds: null, output: '' };
    }
    rmSync(dir, { recursive: true, force: true });
    removeOutdated(spec, dir);
    const source = path.join(ROOT, 'fixtures', spec.fixture);
    for (const file of filesOf(source)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), readFileSync(path.join(source, file)));
    }
    layPackages(dir, spec.packages);
    const started = Date.now();
    const { status, output } = await run(spec.build, dir);
    const buildSeconds = (Date.now() - started) / 1000;
    const missing = spec.expect.filter((file) => !existsSync(path.join(dir, file)));
    if (status !== 0 || missing.length > 0) {
      throw new Error(`${spec.build.join(' ')} in ${dir} ${status !== 0 ? `exited ${status}` : `left no ${missing.join(', ')}`}:\n${output}`);
    }
    writeFileSync(done, JSON.stringify({ builtAt: new Date().toISOString(), buildSeconds, node: process.version }) + '\n');
    return { dir, buildSeconds, output };
  });
}

/** Whether `dir` holds a finished build (for tests that report what they reused). */
export function isBuilt(dir: string): boolean {
  return existsSync(path.join(dir, '.leakwatch-build.json')) && statSync(dir).isDirectory();
}
