import path from 'node:path';
import type { StackCapture } from './records.js';
import { mapFrame } from './source-maps.js';

/**
 * Cheap stack capture: V8 collects the frames now and formats them only if `stack` is read, which
 * leakwatch does only when it reports a leak.
 */
export function captureStack(frames: number, below: Function): StackCapture | null {
  if (frames <= 0) return null;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = frames;
    const capture: { stack?: string } = {};
    Error.captureStackTrace(capture, below);
    return capture;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

// leakwatch's own code, wherever the package is installed (this file is <root>/src/core or <root>/dist/core).
const OWN_ROOT = path.resolve(__dirname, '../..');
const OWN_DIRS = [path.join(OWN_ROOT, 'dist') + path.sep, path.join(OWN_ROOT, 'src') + path.sep];
const OWN_FRAME = /[\\/]leakwatch[\\/](?:dist|src)[\\/]|node:internal[\\/]/;
/**
 * Code that is not the app's: packages (node_modules, also as a bundle's source map names them),
 * Next.js's own (`next/dist`), and the module runtime a Next build puts beside the app's chunks
 * (Turbopack's `[turbopack]_runtime.js`, webpack's `webpack-runtime.js`).
 */
const LIBRARY_FRAME = /[\\/]node_modules[\\/]|[\\/]next[\\/]dist[\\/]|[\\/]\.next[\\/]server[\\/](?:chunks[\\/](?:ssr[\\/])?\[turbopack\]_runtime\.js|webpack-(?:api-)?runtime\.js)/;

/** Whose code a frame of a formatted stack (`at …`) is in. */
export type FrameKind = 'app' | 'library' | 'leakwatch' | 'node';

/** `file:line:column` of an `at …` line (an `at async …` one too); file URLs are shown as paths. */
function locationOf(frame: string): string | null {
  const match = /\(?((?:file:\/\/)?[^()]*?:\d+:\d+)\)?\s*$/.exec(frame.trim());
  if (match === null) return null;
  let where = match[1].replace(/^at (?:async )?/, '');
  if (where.startsWith('file://')) where = decodeURIComponent(where.slice('file://'.length));
  return where;
}

/**
 * Whether `pattern` matches a frame of `capture`, or, with no capture (acquisition stacks off), of
 * the few frames above `below`: a client made by a library's own code (a Cluster's node connection).
 */
export function calledFrom(pattern: RegExp, capture: StackCapture | null, below: Function): boolean {
  const text = (capture ?? captureStack(6, below))?.stack;
  return typeof text === 'string' && pattern.test(text);
}

/**
 * Frames of a module's evaluation: Node's CommonJS and ES module loaders, and the module runtimes
 * of webpack and Turbopack bundles (Next.js loads a route's modules on its first request).
 */
const MODULE_EVALUATION = /\bat (?:async )?(?:Module\._compile|ModuleJob\.run|__webpack_require__|instantiateModule)\b/;

/**
 * The capture was taken while a module's top-level code ran: a connection made there is the
 * module's (a shared client), even when the module loads during a request. False when nothing was
 * captured (acquisition stacks off).
 */
export function whileModuleLoads(capture: StackCapture | null): boolean {
  const text = capture?.stack;
  return typeof text === 'string' && MODULE_EVALUATION.test(text);
}

export function frameKind(frame: string): FrameKind {
  const where = locationOf(frame);
  if (where === null || where.startsWith('node:') || !/[\\/]/.test(where)) return 'node'; // `<anonymous>`, `native`, builtins
  if (OWN_FRAME.test(frame) || OWN_DIRS.some((dir) => where.startsWith(dir))) return 'leakwatch';
  return LIBRARY_FRAME.test(where) ? 'library' : 'app';
}

/** The frames of a capture, each mapped to its source where the process has source maps on (source-maps.ts). */
function framesOf(capture: StackCapture | null): string[] {
  const text = capture?.stack;
  if (typeof text !== 'string') return [];
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .map((line) => mapFrame(line, (file) => LIBRARY_FRAME.test(file)));
}

/** Node's own frames (`node:internal/…`, `node:diagnostics_channel`, `node:events`): never shown. */
const isNodeFrame = (frame: string) => locationOf(frame)?.startsWith('node:') === true;

/**
 * The captured frames as `at …` lines, V8's `at async …` frames included, mapped to their source
 * where the process has source maps on; leakwatch's own and Node's frames left out (null when
 * nothing else is left); library frames stay.
 */
export function formatStack(capture: StackCapture | null): string | null {
  if (typeof capture?.stack !== 'string') return null;
  const shown = framesOf(capture).filter((line) => frameKind(line) !== 'leakwatch' && !isNodeFrame(line));
  return shown.length > 0 ? shown.join('\n') : null;
}

/**
 * `file:line:column` of the first frame in the application's own code (outside node_modules,
 * leakwatch and Node's internals), following V8's async frames past the library's; null when the
 * capture holds none (the library called back from a queue, or the stack was cut short).
 */
export function appSiteOf(capture: StackCapture | null): string | null {
  for (const frame of framesOf(capture)) if (frameKind(frame) === 'app') return locationOf(frame);
  return null;
}

/**
 * `file:line:column` of the first frame of a capture, mapped to its source where the process has
 * source maps on; file URLs are shown as paths.
 */
export function siteOf(capture: StackCapture | null): string {
  const frame = framesOf(capture)[0];
  if (frame === undefined) return 'unknown';
  return locationOf(frame) ?? frame.trim().slice(3);
}
